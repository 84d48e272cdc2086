#!/usr/bin/env bash
# Issue 14, point 4: renewal with an enterprise (offline) CA, [ca] type =
# manual, against a real SoftHSM token; the "enterprise CA" is a local
# OpenSSL CA.  renew makes the pending pair, writes its CSR, runs [hooks]
# csr-ready and exits 4 (waiting); renew again makes no second key; import
# of a wrong certificate changes nothing; import of the right one completes
# the rotation; a kill at each fault point of the completing import, then
# a rerun; --abandon while waiting.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${P11ENROLL_FAULTS:?set by meson (build/tests/p11enroll-faults)}"

L=edge-internal
new_token edge 1234
make_ca "$T/ca" "Contoso Issuing CA"
P=$T/p.ini
seed_profile "$P" edge "$L" ec:p256
for k in directory ca-bundle contact; do ini_set "$P" ca "$k" -; done
ini_set "$P" ca type manual
ini_set "$P" csr ms-template WebServer
ini_set "$P" csr out "$T/req/edge.csr"
ini_set "$P" renewal jitter -
ini_set "$P" renewal retire-after 1h
ini_set "$P" hooks deploy "echo \"\$P11ENROLL_KEY_URI\" >> '$T/deploy.log'"
ini_set "$P" hooks csr-ready "echo \"\$P11ENROLL_CSR\" >> '$T/csr.log'"
mkdir -p "$T/req"
: >"$T/deploy.log"; : >"$T/csr.log"

ptool() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin 1234 "$@" 2>/dev/null; }
key_id() { ptool --list-objects --type privkey | awk -v l="$1" '/^Private Key Object/{p=1} p && $1=="label:" {lab=$2} p && $1=="ID:" { if (lab==l) print $2; p=0 }'; }
npairs() { ptool --list-objects --type privkey | grep -c "label:"; }
npend() { ptool --list-objects --type privkey | grep -c "label: *$L.pending."; }
deploys() { wc -l <"$T/deploy.log" | tr -d ' '; }
csrs() { wc -l <"$T/csr.log" | tr -d ' '; }
fimport() { # fimport FAULT CERT: the fault-armed binary
  P11ENROLL_FAULT=$1 "$P11ENROLL_FAULTS" import --profile "$P" --cert "$2" >"$T/out" 2>"$T/err" </dev/null
  RC=$?; OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
csr_pub() { openssl req -in "$1" -noout -pubkey 2>/dev/null | sha256sum; }
cert_pub() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null | sha256sum; }

# -- first enrollment: manual enroll + import -------------------------------------------------------
run enroll --profile "$P"
expect_rc 0 "enroll (manual) writes the CSR"
issue_cert "$T/ca" "$T/req/edge.csr" "$T/c0.pem"
run import --profile "$P" --cert "$T/c0.pem" --chain "$T/ca/ca.pem"
expect_rc 0 "first import installs the certificate"
id0=$(key_id "$L")
check "a current key" test -n "$id0"
cert0=$(sha256sum <"$T/o/cert.pem")
rm -f "$T/req/edge.csr"

# -- renew: pending pair, CSR, hook, exit 4 ---------------------------------------------------------
run renew --profile "$P" --force --json
expect_rc 4 "renew with [ca] type = manual waits for the CA"
check "renew --json says waiting" bash -c 'jq -e ".waiting == true and (.csr | endswith(\"edge.csr\"))" <<<"$1" >/dev/null' _ "$OUT"
check "the CSR is written" test -s "$T/req/edge.csr"
check "the csr-ready hook ran once with the path" test "$(cat "$T/csr.log")" = "$T/req/edge.csr"
check "the CSR carries the AD CS template" bash -c 'openssl asn1parse -in "$1" | grep -A3 "1.3.6.1.4.1.311.13.2.1" | grep -q BMPSTRING' _ "$T/req/edge.csr"
check "one pending pair" test "$(npend)" = 1
pend=$(ptool --list-objects --type privkey | awk '/label: *'"$L"'\.pending\./{p=1} p && $1=="ID:" {print $2; exit}')
check "the CSR is for the pending key, not the current one" bash -c '[ "$(openssl req -in "$1" -noout -pubkey | sha256sum)" != "$(openssl x509 -in "$2" -noout -pubkey | sha256sum)" ]' _ "$T/req/edge.csr" "$T/o/cert.pem"
check "the current key is unchanged" test "$(key_id "$L")" = "$id0"
check "the files are unchanged" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
check "no deploy yet" test "$(deploys)" = 0
run status --profile "$P"
expect_rc 0 "status while waiting"
expect_out "waiting for a certificate since" "status says it waits"
expect_out "(CSR: $T/req/edge.csr" "status names the CSR"
run status --profile "$P" --json
check "status --json: pending.waiting, csr, waiting_since" bash -c 'jq -e ".pending.waiting == true and .pending.csr == \"$2\" and (.pending.waiting_since | type) == \"string\"" <<<"$1" >/dev/null' _ "$OUT" "$T/req/edge.csr"

# -- renew again: same pending key, CSR rewritten when missing ----------------------------------------
csr1=$(csr_pub "$T/req/edge.csr")
run renew --profile "$P"
expect_rc 4 "renew while waiting exits 4 again"
check "no second pending pair" test "$(npend)" = 1
check "the hook does not run again for the same CSR" test "$(csrs)" = 1
rm "$T/req/edge.csr"
run renew --profile "$P"
expect_rc 4 "renew with the CSR missing exits 4"
check "the CSR is written again" test -s "$T/req/edge.csr"
check "for the same pending key" test "$(csr_pub "$T/req/edge.csr")" = "$csr1"
check "the hook runs for the rewritten CSR" test "$(csrs)" = 2
check "still one pending pair" test "$(npend)" = 1

# -- wrong certificates are refused, nothing changes ------------------------------------------------
openssl x509 -in "$T/c0.pem" -out "$T/old.pem"   # the current key's certificate
state0=$(sha256sum <"$T/state/renew.json")
run import --profile "$P" --cert "$T/old.pem"
expect_rc 1 "import of a certificate for the old key is refused"
expect_err "its public key differs" "it says the key differs"
check "the journal is unchanged" test "$(sha256sum <"$T/state/renew.json")" = "$state0"
check "files unchanged" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
cat >"$T/ext" <<'X'
subjectAltName = DNS:wrong.contoso.com
X
issue_cert "$T/ca" "$T/req/edge.csr" "$T/wrong.pem" "$T/ext"
run import --profile "$P" --cert "$T/wrong.pem"
expect_rc 1 "import with the wrong names is refused"
check "the current key is unchanged" test "$(key_id "$L")" = "$id0"
check "files unchanged after wrong names" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
check "no deploy after refusals" test "$(deploys)" = 0
check "still waiting" bash -c 'jq -e ".txn.step == \"order\"" "$1" >/dev/null' _ "$T/state/renew.json"

# -- the right one completes the rotation -----------------------------------------------------------
issue_cert "$T/ca" "$T/req/edge.csr" "$T/c1.pem"
cat "$T/c1.pem" "$T/ca/ca.pem" >"$T/c1-full.pem"
run import --profile "$P" --cert "$T/c1-full.pem"
expect_rc 0 "import of the issued certificate completes the renewal"
check "the new key is current under L" test "$(key_id "$L")" = "$pend"
check "the old key is retired" bash -c 'ptool() { pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects --type privkey 2>/dev/null; }; ptool "$1" | grep -q "label: *$2.retired."' _ "$SOFTHSM_MODULE" "$L"
check "no pending pair left" test "$(npend)" = 0
check "the cert file is the new certificate" test "$(cert_pub "$T/o/cert.pem")" = "$(cert_pub "$T/c1.pem")"
check "the chain file holds the CA" cmp -s "$T/o/chain.pem" "$T/ca/ca.pem"
check "deploy hook once" test "$(deploys)" = 1
check "journal cleared" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
run status --profile "$P"
expect_out "pending      none" "status: nothing pending"

# -- a kill at each fault point of the completing import, then a rerun ------------------------------
for f in csr-written csr-ready order installed switch switch-half switched files filed deploy deployed; do
  idb=$(key_id "$L"); d0=$(deploys); c0=$(csrs)
  rm -f "$T/req/edge.csr"
  case $f in
    csr-written|csr-ready)
      P11ENROLL_FAULT=$f "$P11ENROLL_FAULTS" renew --profile "$P" --force >"$T/out" 2>"$T/err" </dev/null; RC=$?
      check "fault $f: killed in renew" test "$RC" -eq 137
      run renew --profile "$P"
      expect_rc 4 "fault $f: the rerun waits"
      check "fault $f: the hook ran (again)" test "$(csrs)" -ge $((c0 + 1))
      check "fault $f: one pending pair" test "$(npend)" = 1
      issue_cert "$T/ca" "$T/req/edge.csr" "$T/cf.pem"
      run import --profile "$P" --cert "$T/cf.pem" --chain "$T/ca/ca.pem" ;;
    *)
      run renew --profile "$P" --force
      expect_rc 4 "fault $f: renew waits"
      issue_cert "$T/ca" "$T/req/edge.csr" "$T/cf.pem"
      cat "$T/cf.pem" "$T/ca/ca.pem" >"$T/cf-full.pem"
      fimport "$f" "$T/cf-full.pem"
      check "fault $f: killed there" bash -c '[ "$1" -eq 137 ] && grep -q "fault: killed at $2" "$3"' _ "$RC" "$f" "$T/err"
      check "fault $f: at most one pending pair" test "$(npend)" -le 1
      run import --profile "$P" --cert "$T/cf-full.pem" ;;
  esac
  expect_rc 0 "fault $f: the rerun completes the renewal"
  check "fault $f: a new key is current" bash -c 'test -n "$1" -a "$1" != "$2"' _ "$(key_id "$L")" "$idb"
  check "fault $f: cert file is the issued one" test "$(cert_pub "$T/o/cert.pem")" = "$(cert_pub "$T/cf.pem")"
  check "fault $f: no pending pair" test "$(npend)" = 0
  want=$((d0 + 1)); [ "$f" = deployed ] && want=$((d0 + 2))
  check "fault $f: deploy hook count $want" test "$(deploys)" = "$want"
  check "fault $f: journal cleared" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
done

# -- renew --cert completes too ---------------------------------------------------------------------
run renew --profile "$P" --force
expect_rc 4 "renew waits (for renew --cert)"
issue_cert "$T/ca" "$T/req/edge.csr" "$T/c2.pem"
idb=$(key_id "$L")
run renew --profile "$P" --cert "$T/c2.pem" --chain "$T/ca/ca.pem" --json
expect_rc 0 "renew --cert completes the renewal"
check "renew --cert: a new key is current" bash -c 'test "$1" != "$2"' _ "$(key_id "$L")" "$idb"
run renew --profile "$P" --cert "$T/c2.pem"
expect_rc 1 "renew --cert with nothing waiting fails"
expect_err "no renewal of" "it says nothing waits"

# -- --abandon while waiting ------------------------------------------------------------------------
idb=$(key_id "$L"); n0=$(npairs)
run renew --profile "$P" --force
expect_rc 4 "renew waits (for --abandon)"
check "a pending pair exists" test "$(npend)" = 1
run renew --profile "$P" --abandon
expect_rc 0 "--abandon while waiting"
check "--abandon: the pending pair is destroyed" test "$(npend)" = 0
check "--abandon: same pairs as before" test "$(npairs)" = "$n0"
check "--abandon: the current key stays" test "$(key_id "$L")" = "$idb"
check "--abandon: journal cleared" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
check "--abandon: the CSR is removed" test ! -e "$T/req/edge.csr"
run status --profile "$P"
expect_out "pending      none" "status after --abandon: nothing pending"

finish
