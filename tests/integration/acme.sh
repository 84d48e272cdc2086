#!/usr/bin/env bash
# Issue 5: `p11enroll enroll` against a real Pebble on 127.0.0.1 with the
# certificate key AND the ACME account key on a real SoftHSM token.
source "$(dirname "$0")/lib.sh"

new_token edge 1234
export P11ENROLL_PIN=1234
ptool() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin 1234 "$@"; }
nobj() { ptool --list-objects 2>/dev/null | grep -c 'Object;'; }

start_ca() { # DIR ARGS...: a Pebble stopped when the test exits; sources its env
  local dir=$1; shift
  "$SRCDIR/scripts/pebble-ca" start "$T/$dir" "$@" >"$T/$dir.log" 2>&1 || { cat "$T/$dir.log"; echo "cannot start pebble"; exit 1; }
  at_exit "'$SRCDIR/scripts/pebble-ca' stop '$T/$dir'"
  # shellcheck disable=SC1090
  . "$T/$dir/pebble.env"
  export CHALLTESTSRV
}
# acme_profile OUT LABEL TYPE CHALLENGE: the seed's Edge profile for this Pebble.
acme_profile() {
  seed_profile "$1" edge "$2" "$3"
  ini_set "$1" ca directory "$PEBBLE_DIRECTORY"
  ini_set "$1" ca ca-bundle "$PEBBLE_CA_BUNDLE"
  ini_set "$1" ca account-key "pkcs11:token=edge;object=acme-account"
  ini_set "$1" ca challenge "$4"
  ini_set "$1" ca http-listen "127.0.0.1:$PEBBLE_HTTP_PORT"
  ini_set "$1" hooks deploy "echo \"deploy \$P11ENROLL_CERT \$P11ENROLL_KEY_URI pin=\${P11ENROLL_PIN:-none}\" >> $T/deploy.log"
  if [ "$4" = dns-01 ]; then ini_set "$1" ca dns-hook "$T/hook-ok"; ini_set "$1" ca http-listen -; fi
}
verifies() { # CERT: the leaf verifies against Pebble's root and intermediate
  openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$PEBBLE_INTERMEDIATE" "$1" >/dev/null 2>&1
}
leaf_names() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -1 | sed 's/^ *//'; }
SEED_SANS='DNS:webcon.contoso.com, DNS:sip.contoso.com, DNS:sip.fabrikam.com, DNS:contoso.com'
cat > "$T/hook-ok" <<HOOK
#!/bin/sh
echo "\$1 \$2" >> $T/hook.log
case "\$1" in
add) exec curl -sf --noproxy '*' -d "{\"host\":\"\$2.\",\"value\":\"\$3\"}" "\$CHALLTESTSRV/set-txt" ;;
remove) exec curl -sf --noproxy '*' -d "{\"host\":\"\$2.\"}" "\$CHALLTESTSRV/clear-txt" ;;
esac
HOOK
printf '#!/bin/sh\n[ "$1" = add ] && exit 3\nexit 0\n' >"$T/hook-fail"
printf '#!/bin/sh\nkill -9 "$PPID"\n' >"$T/hook-kill"
chmod +x "$T"/hook-*

start_ca ca --validity 3600 --authz-reuse 0

# -- http-01 with the built-in responder, EC certificate key ----------------------
acme_profile "$T/ec.ini" edge-ec ec:p256 http-01
run enroll --profile "$T/ec.ini" --json
expect_rc 0 "enroll http-01, EC key"
for step in "creating the ACME account key acme-account" "account: created" "order: created" \
    "authorization sip.fabrikam.com: valid" "finalize: sending the CSR" "download: certificate chain" \
    "installing the certificate on token edge"; do
  expect_err "$step" "http-01 progress"
done
check "enroll JSON: serial, notAfter, key, files" bash -c \
  'jq -e ".ca==\"acme\" and (.serial|length>0) and (.not_after|test(\"Z$\")) and (.key|test(\"object=edge-ec\")) and .key_created and .files.fullchain" "$1" >/dev/null' _ "$T/out"
check "the leaf verifies against Pebble's root and intermediate" verifies "$T/o/cert.pem"
check "the leaf carries the seed's names" test "$(leaf_names "$T/o/cert.pem")" = "$SEED_SANS"
a=$(openssl x509 -in "$T/o/cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
b=$(GNUTLS_PIN=1234 p11tool --provider "$SOFTHSM_MODULE" --login --export-pubkey \
    "pkcs11:token=edge;object=edge-ec;type=public" 2>/dev/null | openssl pkey -pubin -outform DER | sha256sum)
check "the leaf's key is the token key" test "$a" = "$b"
id=$(ptool --list-objects --type privkey --label edge-ec 2>/dev/null | awk '/ID:/{print $2}')
check "the certificate sits on the token with its key's ID" bash -c \
  "pkcs11-tool --module '$SOFTHSM_MODULE' --token-label edge --login --pin 1234 --list-objects --type cert 2>/dev/null | grep -A3 'label: *edge-ec' | grep -q 'ID: *$id'"
ptool --list-objects --type privkey --label acme-account >"$T/acct" 2>/dev/null
check "the account key is on the token, never extractable" grep -q 'never extractable' "$T/acct"
check "fullchain = leaf + Pebble's intermediate" test "$(grep -c BEGIN "$T/o/fullchain.pem")" -ge 2
check "the deploy hook ran once, without the PIN" bash -c \
  '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "deploy $2 pkcs11:.*object=edge-ec.* pin=none" "$1"' _ "$T/deploy.log" "$T/o/cert.pem"
check "the order state is gone after success" test ! -e "$T/state/acme-order.url"
check "the account URL is kept in the state dir" grep -q '^https://127.0.0.1' "$T/state/acme-account.url"

# -- http-listen = :PORT (no host): the responder listens on all addresses (issue 11, finding 9)
acme_profile "$T/any.ini" edge-any ec:p256 http-01
ini_set "$T/any.ini" ca http-listen ":$PEBBLE_HTTP_PORT"
mkdir -p "$T/o-any"
for f in cert chain fullchain; do ini_set "$T/any.ini" output "$f" "$T/o-any/$f.pem"; done
ini_set "$T/any.ini" hooks deploy -
run enroll --profile "$T/any.ini"
expect_rc 0 "http-listen = :PORT is accepted and answers the CA"
check "http-listen = :PORT: the leaf is written" verifies "$T/o-any/cert.pem"

# -- dns-01 through a hook, RSA certificate key, the same account ----------------
acme_profile "$T/rsa.ini" edge-rsa rsa:2048 dns-01
run enroll --profile "$T/rsa.ini"
expect_rc 0 "enroll dns-01, RSA key"
expect_no_err "account: created" "dns-01: the account is reused"
expect_out "key          pkcs11:" "enroll prints the key"
check "dns-01: the leaf verifies" verifies "$T/o/cert.pem"
check "dns-01: the leaf is RSA with the seed's names" bash -c \
  'openssl x509 -in "$1" -noout -text | grep -q "rsaEncryption" && [ "$(openssl x509 -in "$1" -noout -ext subjectAltName | tail -1 | sed "s/^ *//")" = "$2" ]' _ "$T/o/cert.pem" "$SEED_SANS"
# Pebble reuses some valid authorizations (PEBBLE_AUTHZREUSE): count those it validated.
nv=$(grep -c 'valid (dns-01)' "$T/err")
check "dns-01: the hook added and removed each validated name ($nv)" bash -c \
  '[ "$2" -ge 1 ] && [ "$(grep -c "^add _acme-challenge" "$1")" -eq "$2" ] && [ "$(grep -c "^remove _acme-challenge" "$1")" -eq "$2" ]' _ "$T/hook.log" "$nv"

# -- failures: each leaves the current certificate and the token alone -----------
cp "$T/o/cert.pem" "$T/before.pem"; n0=$(nobj)
unchanged() { cmp -s "$T/before.pem" "$T/o/cert.pem" && [ "$(nobj)" -eq "$n0" ]; }
cp "$T/rsa.ini" "$T/badval.ini"; ini_set "$T/badval.ini" ca challenge http-01
ini_set "$T/badval.ini" ca dns-hook -; ini_set "$T/badval.ini" ca http-listen "127.0.0.1:$(free_port)"
run enroll --profile "$T/badval.ini"
expect_rc 1 "a challenge that fails validation"
expect_err "is invalid: http-01: acme:error:" "failed validation shows the problem with its type"
check "failed validation: nothing installed" unchanged
cp "$T/rsa.ini" "$T/hookfail.ini"; ini_set "$T/hookfail.ini" ca dns-hook "$T/hook-fail"
run enroll --profile "$T/hookfail.ini"
expect_rc 1 "a dns hook that fails"
expect_err "dns-hook" "hook failure is named"
check "hook failure: nothing installed" unchanged
cp "$T/rsa.ini" "$T/down.ini"; ini_set "$T/down.ini" ca directory "https://127.0.0.1:$(free_port)/dir"
s=$(date +%s)
run enroll --profile "$T/down.ini"
e=$(date +%s)
expect_rc 1 "CA unreachable"
check "CA unreachable fails quickly ($((e - s)) s)" test $((e - s)) -le 10
check "CA unreachable: nothing installed" unchanged
make_ca "$T/other" "not pebble"
cp "$T/rsa.ini" "$T/badtls.ini"; ini_set "$T/badtls.ini" ca ca-bundle "$T/other/ca.pem"
CURL_CA_BUNDLE="$PEBBLE_CA_BUNDLE" SSL_CERT_FILE="$PEBBLE_CA_BUNDLE" run enroll --profile "$T/badtls.ini"
expect_rc 1 "wrong ca-bundle (environment variables do not rescue it)"
expect_err "certificate" "wrong ca-bundle: TLS error"
cp "$T/rsa.ini" "$T/nobundle.ini"; ini_set "$T/nobundle.ini" ca ca-bundle "$T/nope.pem"
run enroll --profile "$T/nobundle.ini"
expect_rc 2 "missing ca-bundle file"
check "input errors: nothing installed" unchanged

# -- interruption: killed after the order is created, the rerun finishes it -------
acme_profile "$T/kill.ini" edge-kill ec:p256 dns-01
ini_set "$T/kill.ini" ca dns-hook "$T/hook-kill"
run enroll --profile "$T/kill.ini"
check "killed during the first authorization" test "$RC" -ne 0
order=$(cat "$T/state/acme-order.url" 2>/dev/null)
check "the order URL was kept" test -n "$order"
ini_set "$T/kill.ini" ca dns-hook "$T/hook-ok"
run enroll --profile "$T/kill.ini"
expect_rc 0 "the rerun completes"
expect_err "order: resuming $order" "the rerun continues the same order"
expect_no_err "order: created" "no second order"
expect_no_err "generating" "no second key"
check "the resumed order's leaf verifies" verifies "$T/o/cert.pem"

# -- External Account Binding ----------------------------------------------------
HMAC=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
start_ca eab --eab "kid-1:$HMAC"
printf '%s\n' "$HMAC" >"$T/eab.key"; chmod 600 "$T/eab.key"
printf 'AAAA%s\n' "${HMAC:4}" >"$T/eab-wrong.key"
rm -f "$T/state/acme-account.url"
acme_profile "$T/eab.ini" edge-eab ec:p256 http-01
ini_set "$T/eab.ini" ca account-key "pkcs11:token=edge;object=acme-eab"
ini_set "$T/eab.ini" ca eab-kid kid-1
ini_set "$T/eab.ini" ca eab-hmac-file "$T/eab-wrong.key"
run enroll --profile "$T/eab.ini"
expect_rc 1 "EAB with a wrong HMAC"
expect_err "acme:error:" "EAB rejection shows the problem"
ini_set "$T/eab.ini" ca eab-hmac-file "$T/eab.key"
run enroll --profile "$T/eab.ini"
expect_rc 0 "EAB with the right HMAC"
check "EAB: the leaf verifies" verifies "$T/o/cert.pem"
ini_set "$T/eab.ini" ca eab-hmac-file -
run enroll --profile "$T/eab.ini"
expect_rc 2 "eab-kid without eab-hmac-file"

# -- no secret anywhere (issue 11): a full run with a known PIN and EAB key -----
# Everything the run leaves behind is searched for the PIN and for the EAB
# key in each form it may take (base64url as given, standard base64, hex):
# stdout, stderr (with -v), the output and state folders, and the deploy
# hook's whole environment.
SECRET_PIN=58203917
new_token vault "$SECRET_PIN"
rm -f "$T/state/acme-account.url"
acme_profile "$T/secret.ini" vault-cert ec:p256 http-01
mkdir -p "$T/so" "$T/sstate"
printf '%s\n' "$SECRET_PIN" >"$T/secret.pin"; chmod 600 "$T/secret.pin"
ini_set "$T/secret.ini" token uri "pkcs11:token=vault"
ini_set "$T/secret.ini" token pin-file "$T/secret.pin"
ini_set "$T/secret.ini" ca account-key "pkcs11:token=vault;object=acme-vault"
ini_set "$T/secret.ini" ca eab-kid kid-1
ini_set "$T/secret.ini" ca eab-hmac-file "$T/eab.key"
ini_set "$T/secret.ini" output cert "$T/so/cert.pem"
ini_set "$T/secret.ini" output chain "$T/so/chain.pem"
ini_set "$T/secret.ini" output fullchain "$T/so/fullchain.pem"
ini_set "$T/secret.ini" output state-dir "$T/sstate"
ini_set "$T/secret.ini" hooks deploy "env > $T/hook.env"
(unset P11ENROLL_PIN; "$P11ENROLL" -v enroll --profile "$T/secret.ini" >"$T/out" 2>"$T/err" </dev/null)
RC=$?; OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
expect_rc 0 "a full run with a PIN file and EAB"
check "the deploy hook ran and its environment was saved" test -s "$T/hook.env"
HMAC_STD=$(printf '%s' "$HMAC" | tr -- '-_' '+/'); HMAC_STD=$HMAC_STD$(printf '%*s' $(( (4 - ${#HMAC_STD} % 4) % 4 )) '' | tr ' ' '=')
HMAC_HEX=$(printf '%s' "$HMAC_STD" | base64 -d | od -An -tx1 -v | tr -d ' \n')
for s in "$SECRET_PIN" "$HMAC" "${HMAC_STD%%=*}" "$HMAC_HEX" "${HMAC_HEX^^}"; do
  check "secret ${s:0:6}... is in no output, file or hook environment" bash -c \
    '! grep -rqaF -- "$1" "$2/out" "$2/err" "$2/so" "$2/sstate" "$2/hook.env"' _ "$s" "$T"
done

# -- Pebble rejecting half of all nonces ---------------------------------------------
start_ca nonce --nonce-reject 50
rm -f "$T/state/acme-account.url"
acme_profile "$T/nonce.ini" edge-nonce ec:p256 http-01
run enroll --profile "$T/nonce.ini"
expect_rc 0 "PEBBLE_WFE_NONCEREJECT=50: enrollment still succeeds"
check "badNonce: the leaf verifies" verifies "$T/o/cert.pem"

# -- issue 12: few requests, one connection (Pebble validating at once, no nonce rejected) --
PEBBLE_VA_ALWAYS_VALID=1 start_ca fast --nonce-reject 0 --authz-reuse 0
rm -f "$T/state/acme-account.url"
acme_profile "$T/fast1.ini" edge-fast1 ec:p256 http-01
run enroll --profile "$T/fast1.ini"
expect_rc 0 "fast CA: the first enrollment creates the account"
acme_profile "$T/fast2.ini" edge-fast2 ec:p256 http-01
run -v enroll --profile "$T/fast2.ini"
expect_rc 0 "fast CA: a second enrollment with the existing account"
expect_no_err "account: created" "fast CA: the saved account URL is used"
expect_no_err "account: found" "fast CA: no account lookup"
nreq=$(sed -n 's/.*acme: \([0-9]*\) HTTP requests\{0,1\} over \([0-9]*\) connection.*/\1 \2/p' "$T/err")
echo "# second enrollment, 4 names: ${nreq:-?} (requests, connections)"; grep -E "waiting|HTTP requests" "$T/err" | sed "s/^/#   /"
check "fast CA: at most 16 HTTP requests over 1 connection (${nreq:-none})" bash -c \
  'set -- $1; [ -n "$1" ] && [ "$1" -le 16 ] && [ "$2" -eq 1 ]' _ "$nreq"

finish
