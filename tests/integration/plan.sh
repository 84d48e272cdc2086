#!/bin/bash
# plan.sh - `p11enroll plan` through the real binary: the seed's table, every
# worked case of edge-san-rules.md §5 (--json and exit codes), every error and
# warning code of §3 with the key it names, malformed profiles (exit 2 and the
# line), usage errors, and that nothing is written anywhere.
. "$SRCDIR/tests/integration/lib.sh"

SEED=$SRCDIR/tests/profiles/seed-edge.ini
SEED_SANS='"sans": ["webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com", "contoso.com"]'
CASE2_SANS='"sans": ["webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com"]'

# edge NAME [key=value...]: $T/NAME.ini with the seed's [edge] keys (case 1),
# each argument replacing or adding a key ("key=" removes it).  Prints the path.
edge() {
  local f=$T/$1.ini kv k
  shift
  local -A v=([access-edge]=sip.contoso.com [webconf-edge]=webcon.contoso.com
    [av-edge]=av.contoso.com [sip-domains]=contoso.com,fabrikam.com
    [xmpp-domains]=contoso.com)
  local order=(access-edge webconf-edge av-edge sip-domains xmpp-domains)
  for kv in "$@"; do
    k=${kv%%=*}
    [[ -v v[$k] ]] || order+=("$k")
    v[$k]=${kv#*=}
  done
  {
    echo "[edge]"
    for k in "${order[@]}"; do [ -n "${v[$k]}" ] && echo "$k = ${v[$k]}"; done
  } >"$f"
  echo "$f"
}

# plan_json NAME ARGS...: run `plan --json` on the profile `edge NAME ARGS` makes.
plan_json() { local f; f=$(edge "$@"); run plan --profile "$f" --json; }

# expect_error_json N CODE KEY: a failed plan, exit 2, the error object on stdout
# naming CODE and KEY, and the stderr line naming the key.
expect_error_json() {
  expect_rc 2 "$1"
  expect_out "{\"error\": {\"code\": \"$2\", \"key\": \"$3\"" "$1"
  expect_err "$3" "$1"
}

# --- the seed: the human table and the exact JSON ---------------------------
run plan --profile "$SEED"
expect_rc 0 "seed: plan"
check "seed: SAN table in the seed's order" \
  test "$(awk '/^ *[0-9]+  /{print $2}' "$T/out" | tr '\n' ' ')" = \
  "webcon.contoso.com sip.contoso.com sip.fabrikam.com contoso.com "
expect_out "subject      CN=sip.contoso.com    access-edge (R-E3)" "seed: subject and why"
expect_out " 1  webcon.contoso.com  webconf-edge (R-E5)" "seed: row 1 why"
expect_out " 2  sip.contoso.com     access-edge (R-E4); also sip-domains (R-E6)" "seed: row 2 why"
expect_out " 3  sip.fabrikam.com    sip-domains (R-E6)" "seed: row 3 why"
expect_out " 4  contoso.com         xmpp-domains (R-E8)" "seed: row 4 why"
expect_out "eku          serverAuth" "seed: EKU"
expect_out "key          rsa:2048" "seed: key"
expect_out "warnings: none" "seed: no warning"
check "seed: nothing on stderr" test ! -s "$T/err"

run plan --profile "$SEED" --json
expect_rc 0 "seed: --json"
want='{"certificate": "external", "subject": "CN=sip.contoso.com", "sans": ["webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com", "contoso.com"], "eku": ["serverAuth"], "key": "rsa:2048", "names": [{"name": "webcon.contoso.com", "from": "webconf-edge", "rule": "R-E5"}, '
check "seed: --json is the cli.md shape" test "${OUT:0:${#want}}" = "$want"
expect_out '"warnings": []' "seed: --json no warnings"
check "seed: --json is one valid JSON object" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out"

# --- §5 worked cases ---------------------------------------------------------
plan_json c1
expect_rc 0 "case 1"
expect_out "$SEED_SANS" "case 1"
expect_out '"subject": "CN=sip.contoso.com"' "case 1"
expect_out '"eku": ["serverAuth"]' "case 1"
expect_out '"warnings": []' "case 1"

plan_json c2 xmpp-domains=
expect_rc 0 "case 2"
expect_out "$CASE2_SANS" "case 2"
expect_out '"warnings": []' "case 2"

plan_json c3 xmpp-domains=corp.contoso.com,finance.contoso.com
expect_rc 0 "case 3"
expect_out '"sans": ["webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com", "corp.contoso.com", "finance.contoso.com"]' "case 3"
expect_out '"warnings": []' "case 3: no warning"

plan_json c4 access-edge=access.contoso.com av-edge= xmpp-domains=
expect_rc 0 "case 4"
expect_out '"subject": "CN=access.contoso.com"' "case 4"
expect_out '"sans": ["webcon.contoso.com", "access.contoso.com", "sip.contoso.com", "sip.fabrikam.com"]' "case 4"

printf '[edge]\ncertificate = internal\ninternal-fqdn = lsedge.contoso.net\n' >"$T/c5.ini"
run plan --profile "$T/c5.ini" --json
expect_rc 0 "case 5"
expect_out '"certificate": "internal", "subject": "CN=lsedge.contoso.net", "sans": [], "eku": ["serverAuth"]' "case 5: no SAN"
run plan --profile "$T/c5.ini"
expect_out "SAN          none: no subjectAltName extension" "case 5: human"

plan_json c6 xmpp-domains= topology=pool load-balancing=dns members=edge01.contoso.net,edge02.contoso.net
expect_rc 0 "case 6"
expect_out "$CASE2_SANS" "case 6"
expect_out '"code": "W_KEY_SHARED_MEMBERS"' "case 6"
expect_out '"members": ["edge01.contoso.net", "edge02.contoso.net"], "load_balancing": "dns"' "case 6: pool facts"
run plan --profile "$T/c6.ini"
expect_out "pool members (2): edge01.contoso.net, edge02.contoso.net" "case 6: human pool"
expect_out "network-HSM partition" "case 6: human HSM note"
expect_out "W_KEY_SHARED_MEMBERS" "case 6: human warning"

plan_json c7 access-edge=SIP.Contoso.COM webconf-edge=WebCon.contoso.com \
  sip-domains=Contoso.com,contoso.COM,Fabrikam.com xmpp-domains=CONTOSO.com
expect_rc 0 "case 7"
expect_out "$SEED_SANS" "case 7"
expect_out '"subject": "CN=sip.contoso.com"' "case 7"
expect_out '"code": "W_DUPLICATE_FOLDED"' "case 7"

plan_json c8 xmpp-domains= access-edge=sip.contoso.com. sip-domains=contoso.com.,fabrikam.com
expect_rc 0 "case 8"
expect_out "$CASE2_SANS" "case 8"

plan_json c9 webconf-edge=web_con.contoso.com
expect_error_json "case 9" E_LABEL_CHARS webconf-edge
expect_out '"name": "web_con.contoso.com"' "case 9"
expect_err "c9.ini:3: [edge] webconf-edge" "case 9: file and line"

plan_json c10 access-edge=sipedge
expect_error_json "case 10" E_SINGLE_LABEL access-edge

plan_json c11 access-edge=131.107.155.10
expect_error_json "case 11" E_IP_LITERAL access-edge

plan_json c12 'access-edge=*.contoso.com'
expect_error_json "case 12" E_WILDCARD access-edge

plan_json c13 sip-domains=contoso.com..
expect_error_json "case 13" E_LABEL_EMPTY sip-domains

plan_json c14 client-auth=yes
expect_rc 0 "case 14"
expect_out "$SEED_SANS" "case 14"
expect_out '"eku": ["serverAuth", "clientAuth"]' "case 14"
expect_out '"code": "W_CLIENT_EKU_PUBLIC_CA"' "case 14"

# --- every error code of §3, with its key ---------------------------------------
plan_json e1 access-edge=.
expect_error_json "E_NAME_EMPTY" E_NAME_EMPTY access-edge
plan_json e2 xmpp-host=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.contoso.com
expect_error_json "E_LABEL_TOO_LONG" E_LABEL_TOO_LONG xmpp-host
plan_json e3 xmpp-domains=-corp.contoso.com
expect_error_json "E_LABEL_HYPHEN" E_LABEL_HYPHEN xmpp-domains
plan_json e4 $'sip-domains=contoso.com,b\xc3\xbccher.de'
expect_error_json "E_NON_ASCII" E_NON_ASCII sip-domains
long=$(printf 'a%.0s' {1..61}); long="$long.$long.$long.$long.com"
plan_json e5 "sip-domains=$long"
expect_error_json "E_NAME_TOO_LONG (derived sip.<d>)" E_NAME_TOO_LONG sip-domains
plan_json e6 webconf-edge=2001:db8::20
expect_error_json "E_IP_LITERAL (IPv6, not bad characters)" E_IP_LITERAL webconf-edge
plan_json e7 'extra-sans=*.contoso.com'
expect_error_json "E_WILDCARD (external extra)" E_WILDCARD extra-sans
plan_json e8 access-edge=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzz.contoso.com
expect_error_json "E_CN_TOO_LONG" E_CN_TOO_LONG access-edge
plan_json e9 sip-domains= xmpp-domains=
expect_error_json "E_NO_SIP_DOMAIN" E_NO_SIP_DOMAIN sip-domains
plan_json e10 product=sfb2019
expect_error_json "E_XMPP_UNSUPPORTED" E_XMPP_UNSUPPORTED xmpp-domains
plan_json e11 topology=pool load-balancing=hardware nat=yes
expect_error_json "E_HLB_NAT" E_HLB_NAT nat
plan_json e12 access-edge=
expect_error_json "E_MISSING" E_MISSING access-edge
plan_json e13 extra-sans=av.contoso.com
expect_error_json "E_CONFLICT (R-E7)" E_CONFLICT extra-sans
printf '[key]\ntype = ed25519\n' >>"$(edge e14)"
run plan --profile "$T/e14.ini" --json
expect_error_json "E_KEY_TYPE (R-E15)" E_KEY_TYPE type
expect_err "e14.ini:8: [key] type" "E_KEY_TYPE: file and line"

# --- every warning code of §3 -----------------------------------------------------
plan_json w1 sip-domains=contoso.com,contoso.onmicrosoft.com
expect_rc 0 "W_ONMICROSOFT_SKIPPED"
expect_out '"code": "W_ONMICROSOFT_SKIPPED"' "W_ONMICROSOFT_SKIPPED"
plan_json w2 xmpp-domains=litware.com
expect_out '"code": "W_XMPP_NOT_SIP_DOMAIN"' "W_XMPP_NOT_SIP_DOMAIN"
members=$(for i in $(seq -w 1 13); do printf 'edge%s.contoso.net,' "$i"; done)
plan_json w3 topology=pool load-balancing=dns "members=${members%,}"
expect_rc 0 "W_POOL_GT_12"
expect_out '"code": "W_POOL_GT_12"' "W_POOL_GT_12"
printf '[edge]\ncertificate = internal\ninternal-fqdn = lsedge.contoso.net\ninternal-san = subject\nextra-sans = *.contoso.net\n' >"$T/w4.ini"
run plan --profile "$T/w4.ini" --json
expect_rc 0 "W_INTERNAL_WILDCARD"
expect_out '"sans": ["lsedge.contoso.net", "*.contoso.net"]' "W_INTERNAL_WILDCARD"
expect_out '"code": "W_INTERNAL_WILDCARD"' "W_INTERNAL_WILDCARD"
plan_json w5 sip-domains=sip.contoso.com
expect_out '"code": "W_SIP_PREFIX_IN_DOMAIN"' "W_SIP_PREFIX_IN_DOMAIN"
expect_out '"sip.sip.contoso.com"' "W_SIP_PREFIX_IN_DOMAIN"
plan_json w6 xmpp-domains=xn--bcher-kva.contoso.com
expect_out '"code": "W_IDN_ALABEL"' "W_IDN_ALABEL"

# --- the other certificates ---------------------------------------------------------
plan_json av certificate=av split-av=yes
expect_rc 0 "av certificate"
expect_out '"certificate": "av", "subject": "CN=sip.contoso.com", "sans": ["sip.contoso.com"]' "av certificate"
printf '[names]\nsubject = www.example.com\nsans = example.com, *.example.com\n' >"$T/n.ini"
run plan --profile "$T/n.ini" --json
expect_rc 0 "[names]"
expect_out '"sans": ["www.example.com", "example.com", "*.example.com"]' "[names]"

# --- malformed profiles: exit 2 and the line ---------------------------------------
bad() { # NAME LINE CODE CONTENT(printf format)
  printf "$4" >"$T/$1.ini"
  run plan --profile "$T/$1.ini"
  expect_rc 2 "malformed $1"
  expect_err "p11enroll: plan: $T/$1.ini:$2: " "malformed $1"
  run plan --profile "$T/$1.ini" --json
  expect_out "\"code\": \"$3\"" "malformed $1 --json"
}
bad unknown-section 3 E_PROFILE_UNKNOWN '[token]\nuri = x\n[bogus]\n'
bad unknown-key 2 E_PROFILE_UNKNOWN '[edge]\nsip-domain = contoso.com\n'
bad duplicate-key 3 E_PROFILE_DUPLICATE '[edge]\naccess-edge = a.contoso.com\naccess-edge = b.contoso.com\n'
bad duplicate-section 3 E_PROFILE_DUPLICATE '[key]\nlabel = a\n[key]\n'
bad empty-value 2 E_PROFILE_EMPTY '[key]\nlabel = ; nothing\n'
bad non-utf8 2 E_PROFILE_ENCODING '[subject]\no = Soci\351t\351\n'
bad control 2 E_PROFILE_ENCODING '[key]\nlabel = a\033b\n'
bad syntax 2 E_PROFILE_SYNTAX '[edge]\naccess-edge\n'
bad bad-enum 2 E_PROFILE_VALUE '[renewal]\njitter = 6 hours\n'
bad bad-keytype 2 E_PROFILE_VALUE '[key]\ntype = rsa:1024\n'
{ printf '[hooks]\ndeploy = '; head -c 5000 /dev/zero | tr '\0' x; echo; } >"$T/long.ini"
run plan --profile "$T/long.ini"
expect_rc 2 "malformed: line over 4096 bytes"
expect_err "$T/long.ini:2: line longer than 4096 bytes" "malformed: line over 4096 bytes"
run plan --profile "$T/missing.ini"
expect_rc 2 "unreadable profile"
expect_err "$T/missing.ini: cannot read" "unreadable profile"

# --- usage ---------------------------------------------------------------------------
run plan
expect_rc 2 "no --profile"
expect_err "p11enroll: plan: --profile is required" "no --profile"
run plan --profile "$SEED" --bogus
expect_rc 2 "unknown option"
expect_err "unknown option '--bogus'" "unknown option"
run plan --profile
expect_rc 2 "--profile without a value"
run plan --help
expect_rc 0 "--help"
expect_out "usage: p11enroll plan --profile FILE [--json]" "--help"
run --help
expect_out "plan     print the subject, ordered SANs and EKUs" "main usage lists plan"

# --- nothing written anywhere --------------------------------------------------------
mkdir "$T/ro"
sed "s#/etc/edge/#$T/ro/#; s#/var/lib/p11enroll/edge-external#$T/ro/state#" "$SEED" >"$T/ro.ini"
before=$(ls -la "$T/ro")
(cd "$T/ro" && "$P11ENROLL" plan --profile "$T/ro.ini" --json >/dev/null 2>&1)
check "plan writes no file (output paths, state dir, cwd)" test "$(ls -la "$T/ro")" = "$before"

finish
