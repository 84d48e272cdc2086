#!/usr/bin/env bash
# Issue 6: renew and status against a real SoftHSM token and a real Pebble
# issuing 120-second certificates.  Due and not due, key rotation under a
# stable label, retired pairs destroyed after retire-after, a kill at every
# fault point then a rerun (token invariants checked with pkcs11-tool), a
# kill in the middle of the ACME order, the lock, a CA failure, an
# unwritable output dir, and a token that refuses to change labels.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${P11ENROLL_FAULTS:?set by meson (build/tests/p11enroll-faults)}"
: "${LABEL_LOCK_MODULE:=}"

if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null; then
  echo "1..0 # SKIP pebble not installed"
  exit 77
fi

L=edge-external
EMPTY_SHA=$(sha256sum </dev/null)
new_token edge 1234
P=$T/p.ini
# shellcheck source=rotate_lib.sh
source "$(dirname "$0")/rotate_lib.sh"
# No authorization reuse: the mid-order kill needs the dns-01 hook to run.
pebble_profile "$P" --validity 120 --authz-reuse 0
ini_set "$P" renewal retire-after 1h
ini_set "$P" hooks deploy "echo \"\$P11ENROLL_KEY_URI\" >> '$T/hook.log'"
: >"$T/hook.log"

ptool() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin 1234 "$@" 2>/dev/null; }
hooks() { wc -l <"$T/hook.log" | tr -d ' '; }
renew() { run renew --profile "$P" "$@"; }
frenew() { # frenew FAULT ARGS...: the fault-armed binary
  local f=$1; shift
  P11ENROLL_FAULT=$f "$P11ENROLL_FAULTS" renew --profile "$P" "$@" >"$T/out" 2>"$T/err" </dev/null
  RC=$?; OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
# id of the private key labelled $1 (empty when none)
key_id() { ptool --list-objects --type privkey | awk -v l="$1" '/^Private Key Object/{p=1} p && $1=="label:" {lab=$2} p && $1=="ID:" { if (lab==l) print $2; p=0 }'; }

snapshot() { ptool --list-objects | grep -E 'label|ID' | sort; }

# -- input errors: exit 2 before anything happens -----------------------------------
run renew
expect_rc 2 "renew without --profile"
expect_err "--profile is required" "renew without --profile says why"
# [ca] type = manual renews since issue 14 (renew_manual.sh); without a state dir it is
# still a profile error that changes nothing.
cp "$P" "$T/manual.ini"; ini_set "$T/manual.ini" ca type manual; ini_set "$T/manual.ini" output state-dir -
run renew --profile "$T/manual.ini"
expect_rc 2 "renew with [ca] type = manual and no state dir"
expect_err "renew needs [output] state-dir" "manual CA: says why"
run renew --profile "$P" --bogus
expect_rc 2 "renew with an unknown option"

# -- first run: no certificate -> due; the key is made and takes the label ----------
renew
expect_rc 0 "first renew: no certificate, issued"
expect_out "no-certificate" "first renew: reason"
ID1=$(key_id "$L")
check "first renew: a key labelled $L" test -n "$ID1"
check "first renew: invariants" invariants
check "first renew: hook ran once" test "$(hooks)" = 1
check "first renew: hook got the stable URI" grep -q "object=$L;type=private" "$T/hook.log"

# -- not due: exit 3, nothing changed -------------------------------------------------
before=$(snapshot); cert_before=$(sha256sum <"$T/o/cert.pem")
renew
expect_rc 3 "renew right after: not due"
expect_err "not due until" "not due: says until when"
check "not due: token unchanged" test "$(snapshot)" = "$before"
check "not due: cert file unchanged" test "$(sha256sum <"$T/o/cert.pem")" = "$cert_before"
check "not due: hook not run" test "$(hooks)" = 1
run renew --profile "$P" --json
expect_rc 3 "not due --json"
check "not due --json: renewed false" bash -c 'jq -e ".renewed == false and .due == false and .reason == \"not-due\"" <<<"$1" >/dev/null' _ "$OUT"
renew --dry-run --force
expect_rc 0 "--dry-run --force: would renew"
expect_out "would" "--dry-run says what it would do"
check "--dry-run: token unchanged" test "$(snapshot)" = "$before"

# -- status ---------------------------------------------------------------------------
run status --profile "$P" --json
expect_rc 0 "status --json"
check "status: current key id, serial, SANs, not due" bash -c '
  jq -e --arg id "$2" ".current.key_id == \$id and (.current.serial|length) > 0 and
     (.current.sans|index(\"sip.contoso.com\")) != null and .renewal.due == false and
     .pending == null" <<<"$1" >/dev/null' _ "$OUT" "$ID1"
run status --profile "$P"
expect_out "not due" "status text: renewal line"

# -- due by --force: new key, new id, the stable label names it, old pair retired ---------
renew --force
expect_rc 0 "renew --force"
ID2=$(key_id "$L")
check "--force: a new key id" test -n "$ID2" -a "$ID2" != "$ID1"
check "--force: the old pair is retired" bash -c 'ptool() { pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects 2>/dev/null; }; ptool "$1" | grep -A3 "^Private Key" | grep -q "label: *$2.retired."' _ "$SOFTHSM_MODULE" "$L"
check "--force: invariants" invariants
check "--force: hook ran once more" test "$(hooks)" = 2
a=$(GNUTLS_PIN=1234 p11tool --provider "$SOFTHSM_MODULE" --login --export-pubkey \
    "pkcs11:token=edge;object=$L;type=public" 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
b=$(openssl x509 -in "$T/o/cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
check "--force: the stable URI names the new key (p11tool)" test "$a" = "$b" -a "$a" != "$EMPTY_SHA"

# -- due by time: renew-before 119/120 of a 120 s lifetime ----------------------------------
ini_set "$P" renewal renew-before 119/120
sleep 2
renew
expect_rc 0 "due by time"
expect_out "renew-before" "due by time: reason"
ini_set "$P" renewal renew-before 1/3
check "due by time: invariants" invariants

# -- due by changed names -----------------------------------------------------------------
ini_set "$P" edge extra-sans extra.contoso.com
renew
expect_rc 0 "due by changed names"
expect_out "names" "changed names: reason"
check "changed names: the new certificate has the name" bash -c 'openssl x509 -in "$1" -noout -ext subjectAltName | grep -q extra.contoso.com' _ "$T/o/cert.pem"
check "changed names: invariants" invariants
renew
expect_rc 3 "changed names: then not due"
check "hooks so far: one per renewal" test "$(hooks)" = 4

# -- retired pairs are destroyed only after retire-after ---------------------------------------
nret() { ptool --list-objects --type privkey | grep -c "label: *$L.retired." ; }
check "three retired pairs kept (retire-after 1h)" test "$(nret)" = 3
ini_set "$P" renewal retire-after 4s
renew --force --json
expect_rc 0 "renew with retire-after 4s"
newest=$(jq -r .retired <<<"$OUT")
check "retire-after 4s: the pair retired just now ($newest) is kept" bash -c '
  pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects --type privkey 2>/dev/null |
  grep -q "label: *$2\$"' _ "$SOFTHSM_MODULE" "$newest"
sleep 4
renew
expect_rc 3 "after retire-after: not due (exit 3)"
expect_err "destroyed the retired key pair" "after retire-after: says what it destroyed"
check "after retire-after: no retired pairs left" test "$(nret)" = 0
check "after retire-after: invariants" invariants
check "after retire-after: the state lists none" bash -c 'jq -e ".retired == []" "$1" >/dev/null' _ "$T/state/renew.json"
ini_set "$P" renewal retire-after 1h

# -- a kill at every fault point, then a rerun ------------------------------------------------------
# At every kill point the token and the [output] files are checked as they
# are left: the full invariants (one pair labelled L, its certificate, the
# [output] cert is that certificate and has that public key, at most the one
# journalled pending pair) everywhere except in the window of the switch:
# between the two relabels no pair has L, and from the switch to the files
# step the files still hold the old certificate (the old key is still on the
# token); the rerun finishes both.
for f in keygen generated order installed switch switch-half switched files filed deploy deployed; do
  idb=$(key_id "$L"); h0=$(hooks); cert0=$(sha256sum <"$T/o/cert.pem")
  frenew "$f" --force
  check "fault $f: killed there" bash -c '[ "$1" -eq 137 ] && grep -q "fault: killed at $2" "$3"' _ "$RC" "$f" "$T/err"
  npend=$(ptool --list-objects --type privkey | grep -c "label: *$L.pending.")
  check "fault $f: at most one pending pair" test "$npend" -le 1
  case $f in
    keygen|generated|order|installed|switch)
      check "fault $f: the old pair is still current" test "$(key_id "$L")" = "$idb"
      check "fault $f: the [output] files are untouched" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
      check "fault $f: full invariants as killed" invariants 1 ;;
    switch-half)
      check "fault $f: between the relabels no pair has the label (known window)" test -z "$(key_id "$L")"
      check "fault $f: the [output] files still hold the old certificate" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0" ;;
    switched|files)
      check "fault $f: the new pair is current" bash -c 'test -n "$1" -a "$1" != "$2"' _ "$(key_id "$L")" "$idb"
      check "fault $f: token invariants as killed" bash -c 'ptool() { pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects 2>/dev/null; }; ptool "$1" | python3 "$2" "$3" "$4" 1 >/dev/null' _ "$SOFTHSM_MODULE" "$T/inv.py" "$L" "$T/state/renew.json"
      check "fault $f: the files still hold the old certificate (switched next)" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0" ;;
    *)
      check "fault $f: the new pair is current" bash -c 'test -n "$1" -a "$1" != "$2"' _ "$(key_id "$L")" "$idb"
      check "fault $f: full invariants as killed" invariants 1 ;;
  esac
  run status --profile "$P" --json
  check "fault $f: status shows the pending work" bash -c 'jq -e ".pending.step != null and .renewal.due == true" <<<"$1" >/dev/null' _ "$OUT"
  renew
  expect_rc 0 "fault $f: the rerun completes the renewal"
  expect_err "resuming the renewal" "fault $f: the rerun says it resumes"
  case $f in
    installed|switch|switch-half|switched|files|filed|deploy|deployed)
      expect_no_err "order: created" "fault $f: no second order" ;;
  esac
  check "fault $f: invariants after the rerun" invariants
  check "fault $f: a new key is current" bash -c 'test "$1" != "$2"' _ "$(key_id "$L")" "$idb"
  check "fault $f: cert file renewed" test "$(sha256sum <"$T/o/cert.pem")" != "$cert0"
  # The hook runs once per renewal; a kill after it but before the journal
  # said so runs it again (at least once, never zero times).
  want=$((h0 + 1)); [ "$f" = deployed ] && want=$((h0 + 2))
  check "fault $f: deploy hook count $want" test "$(hooks)" = "$want"
  check "fault $f: journal cleared" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
done
check "faults: retired pairs recorded, none orphaned" invariants

# A switch that fails (another key took the label meanwhile): the [output]
# files keep the old certificate, which is the old key's; the rerun, once
# the stranger is gone, switches and writes them.
idb=$(key_id "$L"); cert0=$(sha256sum <"$T/o/cert.pem"); h0=$(hooks)
frenew switch-half --force
ptool --keypairgen --key-type EC:prime256v1 --label "$L" --id 5eed >/dev/null
renew
expect_rc 1 "label taken at the switch: exit 1"
expect_err "not switching" "label taken at the switch: not switching"
check "label taken at the switch: the [output] cert is still the old one" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
check "label taken at the switch: ... whose key is the old pair" bash -c '
  a=$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
  pkcs11-tool --module "$2" --token-label edge --login --pin 1234 --read-object --type pubkey --id "$3" -o "$4" >/dev/null 2>&1
  b=$(openssl pkey -pubin -inform DER -in "$4" -outform DER | sha256sum); test "$a" = "$b"' _ "$T/o/cert.pem" "$SOFTHSM_MODULE" "$idb" "$T/old.pub"
check "label taken at the switch: hook not run" test "$(hooks)" = "$h0"
ptool --delete-object --type privkey --id 5eed >/dev/null; ptool --delete-object --type pubkey --id 5eed >/dev/null
renew
expect_rc 0 "label taken at the switch: the rerun switches once the label is free"
check "label taken at the switch: invariants" invariants
check "label taken at the switch: the files now hold the new certificate" test "$(sha256sum <"$T/o/cert.pem")" != "$cert0"

# A kill in the middle of one relabel (the label_lock module kills the process
# at its 3rd C_SetAttributeValue(CKA_LABEL = L): the new pair's public and
# private keys are L, its certificate is not): the rerun finishes the switch,
# certificate included, instead of taking it as done.
if [ -n "$LABEL_LOCK_MODULE" ] && [ -f "$LABEL_LOCK_MODULE" ]; then
  cp "$P" "$T/kill.ini"; ini_set "$T/kill.ini" token module "$LABEL_LOCK_MODULE"
  idb=$(key_id "$L")
  LABEL_LOCK_TARGET=$SOFTHSM_MODULE LABEL_LOCK_MODE=none LABEL_LOCK_KILL="$L:3" \
    "$P11ENROLL" renew --profile "$T/kill.ini" --force >"$T/out" 2>"$T/err" </dev/null; RC=$?
  check "kill inside the relabel: killed" test "$RC" -eq 137
  check "kill inside the relabel: journal at switch" bash -c 'jq -e ".txn.step == \"switch\"" "$1" >/dev/null' _ "$T/state/renew.json"
  check "kill inside the relabel: the new private key already has the label" test -n "$(key_id "$L")" -a "$(key_id "$L")" != "$idb"
  renew
  expect_rc 0 "kill inside the relabel: the rerun completes"
  nl=$(ptool --list-objects | python3 -c '
import re, sys
label, n, cls = sys.argv[1], {}, None
for line in sys.stdin:
    m = re.match(r"^(Private Key|Public Key|Certificate) Object", line)
    if m: cls = m.group(1); continue
    m = re.match(r"^\s+label:\s+(.*)$", line)
    if m and cls and m.group(1).strip() == label: n[cls] = n.get(cls, 0) + 1
print(n.get("Private Key", 0), n.get("Public Key", 0), n.get("Certificate", 0))' "$L")
  check "kill inside the relabel: one private key, one public key, one certificate labelled $L ($nl)" test "$nl" = "1 1 1"
  check "kill inside the relabel: invariants" invariants
fi

# A resumed pending key is checked again: the profile's key type changed
# since the kill (ec:p256 -> ec:p384), or a pair that is not safe sits under
# the journalled id: destroyed and made again, under the same journal entry.
frenew generated --force
pend=$(jq -r .txn.pending_id "$T/state/renew.json")
ini_set "$P" key type ec:p384
renew
expect_rc 0 "pending key of the old type: the rerun completes"
expect_err "but the profile asks for ec:p384: replacing it" "pending key of the old type: replaced"
check "pending key of the old type: the current key is ec:p384, the journalled id" bash -c '
  jq -e --arg id "$2" ".current.key_type == \"ec:p384\" and .current.key_id == \$id" <<<"$1" >/dev/null' _ "$("$P11ENROLL" status --profile "$P" --json 2>/dev/null)" "$pend"
# (back to ec:p256: pkcs11-tool, which the invariants use, cannot read P-384 public keys)
ini_set "$P" key type ec:p256
frenew keygen
check "key type back: due by key type, killed before keygen" bash -c 'jq -e ".txn.reason == \"key-type\"" "$1" >/dev/null' _ "$T/state/renew.json"
pend=$(jq -r .txn.pending_id "$T/state/renew.json"); plabel=$(jq -r .txn.pending_label "$T/state/renew.json")
ptool --keypairgen --key-type EC:prime256v1 --label "$plabel" --id "$pend" --extractable >/dev/null
renew
expect_rc 0 "extractable pending key: the rerun completes"
expect_err "is not sensitive, never extractable" "extractable pending key: replaced"
check "extractable pending key: the current key is sensitive and never extractable" bash -c '
  pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects --type privkey 2>/dev/null |
  awk -v l="$2" "/^Private Key Object/{p=1} p && \$1==\"label:\" {lab=\$2} p && /Access:/ { if (lab==l) print; p=0 }" |
  grep -q "sensitive.*never extractable"' _ "$SOFTHSM_MODULE" "$L"
check "extractable pending key: invariants" invariants

# Retired "in the future" (the clock was ahead): kept, warned about, and its
# retire-after counted from now, not kept for ever.
future=$(( $(date +%s) + 10 * 365 * 86400 ))
fid=$(jq -r '.retired[0].id' "$T/state/renew.json"); flabel=$(jq -r '.retired[0].label' "$T/state/renew.json")
jq --argjson t "$future" '.retired[0].retired_at = $t' "$T/state/renew.json" >"$T/st.tmp" && mv "$T/st.tmp" "$T/state/renew.json"
ini_set "$P" renewal retire-after 0
renew
expect_rc 3 "retired in the future: not due"
expect_err "in the future: the host clock" "retired in the future: warns about the clock"
check "retired in the future: that pair is kept" bash -c 'pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects --type privkey 2>/dev/null | grep -q "label: *$2\$"' _ "$SOFTHSM_MODULE" "$flabel"
check "retired in the future: the others are gone" test "$(nret)" = 1
check "retired in the future: retire-after now counts from now" bash -c 'jq -e --arg id "$2" --argjson now "$3" "[.retired[] | select(.id == \$id) | .retired_at <= \$now] == [true]" "$1" >/dev/null' _ "$T/state/renew.json" "$fid" "$(date +%s)"

# A kill while destroying a retired pair: the rerun finishes the destruction.
frenew destroy
check "fault destroy: killed there" grep -q "fault: killed at destroy" "$T/err"
renew
check "fault destroy: the rerun destroys the rest (exit 3, not due)" test "$RC" -eq 3
check "fault destroy: no retired pairs left" test "$(nret)" = 0
check "fault destroy: invariants" invariants

# Retired pairs that cannot be destroyed after a renewal: a warning, exit 0
# (the new certificate is installed and the hook ran); a later run retries.
if [ -n "$LABEL_LOCK_MODULE" ] && [ -f "$LABEL_LOCK_MODULE" ]; then
  cp "$P" "$T/nodestroy.ini"; ini_set "$T/nodestroy.ini" token module "$LABEL_LOCK_MODULE"
  h0=$(hooks)
  LABEL_LOCK_TARGET=$SOFTHSM_MODULE LABEL_LOCK_MODE=nodestroy \
    "$P11ENROLL" renew --profile "$T/nodestroy.ini" --force >"$T/out" 2>"$T/err" </dev/null; RC=$?
  expect_rc 0 "housekeeping fails after a renewal: still exit 0"
  expect_err "destroying retired key pairs failed" "housekeeping fails after a renewal: warns"
  check "housekeeping fails after a renewal: hook ran once" test "$(hooks)" = $((h0 + 1))
  check "housekeeping fails after a renewal: the retired pair is kept and recorded" test "$(nret)" = 1
  check "housekeeping fails after a renewal: invariants" invariants
  renew
  expect_rc 3 "housekeeping: the next run destroys it (not due)"
  check "housekeeping: none left" test "$(nret)" = 0
  # A key generation the token refuses: the renewal is abandoned, not left
  # journalled for ever; the token and the files are unchanged.
  before=$(snapshot); cert0=$(sha256sum <"$T/o/cert.pem")
  LABEL_LOCK_TARGET=$SOFTHSM_MODULE LABEL_LOCK_MODE=nokeygen \
    "$P11ENROLL" renew --profile "$T/nodestroy.ini" --force >"$T/out" 2>"$T/err" </dev/null; RC=$?
  expect_rc 1 "keygen refused: exit 1"
  expect_err "abandoned" "keygen refused: says the renewal is abandoned"
  check "keygen refused: no journal entry left" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
  check "keygen refused: token unchanged" test "$(snapshot)" = "$before"
  check "keygen refused: files unchanged" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
  renew
  expect_rc 3 "keygen refused: the next run has nothing to resume (not due)"
fi
ini_set "$P" renewal retire-after 1h

# -- a kill in the middle of the ACME order (dns-01 hook kills the client) ----------------------
cat >"$T/dns-hook" <<'EOF'
#!/bin/sh
if [ "$1" = add ] && [ ! -e "$KILL_MARK" ]; then : >"$KILL_MARK"; kill -9 "$PPID"; fi
case "$1" in
add) exec curl -sf --noproxy '*' -d "{\"host\":\"$2.\",\"value\":\"$3\"}" "$CHALLTESTSRV/set-txt" ;;
remove) exec curl -sf --noproxy '*' -d "{\"host\":\"$2.\"}" "$CHALLTESTSRV/clear-txt" ;;
esac
EOF
chmod +x "$T/dns-hook"
export KILL_MARK=$T/killed
ini_set "$P" ca challenge dns-01
ini_set "$P" ca dns-hook "$T/dns-hook"
ini_set "$P" ca http-listen -
idb=$(key_id "$L")
renew --force
check "mid-order kill: the client died" test "$RC" -eq 137 -a -e "$KILL_MARK"
check "mid-order kill: the order was opened" bash -c 'grep -q "order: created" "$1" && test -s "$2"' _ "$T/err" "$T/state/acme-order.url"
check "mid-order kill: old pair still current" test "$(key_id "$L")" = "$idb"
pend=$(jq -r .txn.pending_id "$T/state/renew.json")
renew
expect_rc 0 "mid-order kill: the rerun completes"
expect_err "order: resuming" "mid-order kill: the same order is resumed"
expect_no_err "order: created" "mid-order kill: no second order"
check "mid-order kill: the journalled pending key became current" test "$(key_id "$L")" = "$pend"
check "mid-order kill: invariants" invariants
ini_set "$P" ca challenge http-01
ini_set "$P" ca dns-hook -
ini_set "$P" ca http-listen "127.0.0.1:$PEBBLE_HTTP_PORT"

# -- two runs at once -------------------------------------------------------------------------------
h0=$(hooks); idb=$(key_id "$L")
P11ENROLL_PAUSE=order P11ENROLL_PAUSE_SECS=4 "$P11ENROLL_FAULTS" renew --profile "$P" --force \
  >"$T/a.out" 2>"$T/a.err" </dev/null &
apid=$!
for _ in $(seq 1 100); do flock -n "$T/state/renew.lock" true || break; sleep 0.05; done
renew --no-wait
expect_rc 1 "concurrent --no-wait: exit 1"
expect_err "holds the lock" "concurrent --no-wait: says another run holds the lock"
renew
expect_rc 3 "concurrent: the second run waited, then found nothing due"
expect_err "waiting for another p11enroll run" "concurrent: the second run said it waits"
wait "$apid"; arc=$?
check "concurrent: the first run renewed" test "$arc" -eq 0
check "concurrent: one renewal, one hook run" test "$(hooks)" = $((h0 + 1))
check "concurrent: invariants" invariants

# -- the CA fails mid-renewal: old certificate current, exit 1; the rerun completes ---------------
idb=$(key_id "$L"); cert0=$(sha256sum <"$T/o/cert.pem"); h0=$(hooks)
ini_set "$P" ca directory "https://127.0.0.1:$(free_port)/dir"
renew --force
expect_rc 1 "CA down: exit 1"
expect_err "stay current" "CA down: says the old pair stays current"
check "CA down: the old pair is current" test "$(key_id "$L")" = "$idb"
check "CA down: cert file unchanged" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
check "CA down: hook not run" test "$(hooks)" = "$h0"
check "CA down: invariants (one journalled pending pair)" invariants 1
pend=$(jq -r .txn.pending_id "$T/state/renew.json")
ini_set "$P" ca directory "$PEBBLE_DIRECTORY"
renew
expect_rc 0 "CA back: the rerun completes"
check "CA back: with the same pending key" test "$(key_id "$L")" = "$pend"
check "CA back: invariants" invariants

# -- --abandon: a way out of a renewal that cannot be completed ------------------------------------
run renew --profile "$P" --abandon --force
expect_rc 2 "--abandon --force: usage error"
renew --abandon
expect_rc 0 "--abandon with nothing in progress: exit 0"
expect_err "nothing to abandon" "--abandon with nothing in progress: says so"
idb=$(key_id "$L"); cert0=$(sha256sum <"$T/o/cert.pem"); h0=$(hooks)
ini_set "$P" ca directory "https://127.0.0.1:$(free_port)/dir"
renew --force
expect_rc 1 "abandon: a renewal stuck on the CA (exit 1)"
ini_set "$P" ca directory "$PEBBLE_DIRECTORY"
pend=$(jq -r .txn.pending_id "$T/state/renew.json")
echo "https://example.invalid/order/1" >"$T/state/acme-order.url"
check "abandon: a pending pair and order state exist" bash -c 'test -n "$1" -a "$1" != null -a -e "$2/acme-order.key"' _ "$pend" "$T/state"
renew --abandon
expect_rc 0 "--abandon: exit 0"
expect_err "destroyed the pending key pair" "--abandon: says what it destroyed"
check "--abandon: the pending pair is gone" test "$(ptool --list-objects | grep -ci "ID: *$pend")" = 0
check "--abandon: journal and order state cleared" bash -c 'jq -e ".txn == null" "$1/renew.json" >/dev/null && test ! -e "$1/acme-order.url" -a ! -e "$1/acme-order.key"' _ "$T/state"
check "--abandon: the old pair is still current" test "$(key_id "$L")" = "$idb"
check "--abandon: files unchanged, hook not run" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0" -a "$(hooks)" = "$h0"
check "--abandon: invariants (no pending pair)" invariants
renew
expect_rc 3 "--abandon: the next run has nothing to resume (not due)"

# -- an unwritable output dir: exit 1, token unchanged ------------------------------------------------
: >"$T/notadir"
ini_set "$P" output chain "$T/notadir/chain.pem"
before=$(snapshot)
renew --force
expect_rc 1 "unwritable output dir: exit 1"
expect_err "is not writable" "unwritable output dir: says which"
check "unwritable output dir: token unchanged" test "$(snapshot)" = "$before"
check "unwritable output dir: no journal entry" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
ini_set "$P" output chain "$T/o/chain.pem"

# -- rotate = no: the same key, a new certificate ---------------------------------------------------
ini_set "$P" renewal rotate no
idb=$(key_id "$L"); cert0=$(sha256sum <"$T/o/cert.pem")
renew --force
expect_rc 0 "rotate = no: renewed"
check "rotate = no: the same key" test "$(key_id "$L")" = "$idb"
check "rotate = no: a new certificate" test "$(sha256sum <"$T/o/cert.pem")" != "$cert0"
check "rotate = no: invariants" invariants
before=$(snapshot)
ini_set "$P" key type ec:p384
renew
expect_rc 2 "rotate = no with a changed key type: a profile error (exit 2)"
expect_err "rotate = no the key is kept" "rotate = no with a changed key type: says why"
check "rotate = no with a changed key type: token unchanged" test "$(snapshot)" = "$before"
ini_set "$P" key type ec:p256
ini_set "$P" renewal rotate yes

# -- a deploy hook that fails: exit 1, the certificate installed; the next run retries the hook --
h0=$(hooks); idb=$(key_id "$L")
ini_set "$P" hooks deploy "exit 4"
renew --force
expect_rc 1 "failing hook: exit 1"
expect_err "runs the deploy hook again" "failing hook: says the next run retries it"
check "failing hook: the new pair is current" test "$(key_id "$L")" != "$idb"
ini_set "$P" hooks deploy "echo \"\$P11ENROLL_KEY_URI\" >> '$T/hook.log'"
renew
expect_rc 0 "failing hook: the rerun runs the hook"
check "failing hook: ran once when fixed" test "$(hooks)" = $((h0 + 1))
check "failing hook: invariants" invariants

# -- ACME Renewal Information: Pebble 2.4.0 has none, so a stand-in directory -------------------
# (Pebble's listener certificate) serves renewalInfo and records the CertID asked for, and
# the payload of newOrder, which it then refuses.
cat >"$T/ari.py" <<'PYEOF'
import base64, http.server, json, ssl, sys
port, cert, key, window, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body, ctype="application/json", extra=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Replay-Nonce", "bm9uY2Vub25jZQ")
        for k, v in extra: self.send_header(k, v)
        self.end_headers(); self.wfile.write(data)
    def do_HEAD(self):
        self.send_response(200); self.send_header("Replay-Nonce", "bm9uY2Vub25jZQ"); self.end_headers()
    def do_POST(self):
        # newAccount finds the account; newOrder records its payload, then refuses.
        jws = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        p = jws["payload"]
        payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) or b"{}")
        if self.path == "/a":
            return self.reply(200, {"status": "valid"}, extra=[("Location", "https://127.0.0.1:%d/acct/1" % port)])
        if self.path == "/o":
            open(log + ".orders", "a").write("replaces=%s\n" % payload.get("replaces", "-"))
        self.reply(403, {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "stand-in"},
                   "application/problem+json")
    def do_GET(self):
        base = "https://127.0.0.1:%d" % port
        if self.path == "/dir":
            body = {"newNonce": base + "/n", "newAccount": base + "/a", "newOrder": base + "/o"}
            if window != "-":
                body["renewalInfo"] = base + "/ari"
        elif self.path.startswith("/ari/"):
            open(log, "a").write(self.path[5:] + "\n")
            s, e = window.split(",")
            body = {"suggestedWindow": {"start": s, "end": e}}
        else:
            self.send_response(404); self.end_headers(); return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "3600")
        self.end_headers(); self.wfile.write(data)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
srv = http.server.HTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PYEOF
ari_start() { # ari_start START,END (or - for a directory without renewalInfo)
  ARIPORT=$(free_port)
  python3 "$T/ari.py" "$ARIPORT" "$T/ca/listener.pem" "$T/ca/listener.key" "$1" "$T/ari.log" &
  ARIPID=$!
  at_exit "kill $ARIPID 2>/dev/null"
  for _ in $(seq 1 50); do
    curl -sf --noproxy '*' --cacert "$PEBBLE_CA_BUNDLE" "https://127.0.0.1:$ARIPORT/dir" >/dev/null && break
    sleep 0.1
  done
  ini_set "$P" ca directory "https://127.0.0.1:$ARIPORT/dir"
}
ari_stop() { kill "$ARIPID" 2>/dev/null; wait "$ARIPID" 2>/dev/null; ini_set "$P" ca directory "$PEBBLE_DIRECTORY"; }
# The CertID of RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial octets).
b64u() { xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '='; }
aki=$(openssl x509 -in "$T/o/cert.pem" -noout -ext authorityKeyIdentifier | grep -oE '([0-9A-F]{2}:){19}[0-9A-F]{2}' | head -1 | tr -d ':')
ser=$(openssl x509 -in "$T/o/cert.pem" -noout -serial | cut -d= -f2)
[ $(( ${#ser} % 2 )) -eq 1 ] && ser="0$ser"
case $ser in [89A-F]*) ser="00$ser" ;; esac
certid="$(b64u <<<"$aki").$(b64u <<<"$ser")"
: >"$T/ari.log"
before=$(snapshot)
ari_start "2000-01-01T00:00:00Z,2000-01-02T00:00:00Z"
renew --dry-run
expect_rc 0 "ARI: a window in the past makes it due (--dry-run)"
expect_out "ari" "ARI: the reason is the CA's window"
check "ARI: the CertID asked for is RFC 9773's ($certid)" test "$(head -1 "$T/ari.log")" = "$certid"
ari_stop
ari_start "2099-01-01T00:00:00Z,2099-01-02T00:00:00Z"
renew
expect_rc 3 "ARI: a future window: not due"
expect_out "ARI" "ARI: says the time is the CA's"
check "ARI: the window is cached in the state" bash -c 'jq -e --arg c "$2" ".ari.cert_id == \$c" "$1" >/dev/null' _ "$T/state/renew.json" "$certid"
# The cached window is used until its Retry-After: moved into the past in the
# cache, it makes the renewal due (reason ari) with no new request to the CA.
n0=$(wc -l <"$T/ari.log")
jq '.ari.start = 946684800 | .ari.end = 946771200' "$T/state/renew.json" >"$T/st.tmp" && mv "$T/st.tmp" "$T/state/renew.json"
renew --dry-run --json
expect_rc 0 "ARI: the cached window (now past) is used: due"
check "ARI: ... for the reason ari" bash -c 'jq -e ".due == true and .reason == \"ari\"" <<<"$1" >/dev/null' _ "$OUT"
check "ARI: ... without asking the CA again" test "$(wc -l <"$T/ari.log")" = "$n0"
ari_stop
renew --dry-run
expect_rc 0 "ARI: the cached window is used with the ARI server gone"
expect_out "ari" "ARI: cached, the reason is still ari"
# A cache entry that does not load (a negative time an older build stored) is dropped, not fatal.
jq '.ari.start = -86400 | .ari.end = -3600' "$T/state/renew.json" >"$T/st.tmp" && mv "$T/st.tmp" "$T/state/renew.json"
run status --profile "$P"
expect_rc 0 "ARI: a malformed cached window: status still works"
expect_err "dropping a malformed cached" "ARI: a malformed cached window: warned and dropped"
renew
expect_rc 3 "ARI: a malformed cached window: renew still works (not due)"
check "ARI: the bad cache entry is gone from the state" bash -c 'jq -e "(.ari // {}) | (.start // 0) >= 0" "$1" >/dev/null' _ "$T/state/renew.json"
check "ARI: token unchanged" test "$(snapshot)" = "$before"
# ARI cannot be fetched (the CA is down): one warning that names the cause, no error line
# before it, no "(ARI0)" (issue 11, finding 9); renew-before decides.
ini_set "$P" ca directory "https://127.0.0.1:$(free_port)/dir"
renew --dry-run
expect_rc 3 "ARI unreachable: renew-before decides (not due)"
check "ARI unreachable: one warning line with the cause" bash -c \
  '[ "$(grep -c "127.0.0.1" "$1")" = 1 ] && grep -q "renewal information (ARI): .*127.0.0.1.*; using renew-before" "$1"' _ "$T/err"
expect_no_err "ARI0" "ARI unreachable: no \"(ARI0)\""
ini_set "$P" ca directory "$PEBBLE_DIRECTORY"

# The renewal's newOrder names the certificate it replaces (RFC 9773 §5), only when
# the CA offers ARI; refused, it is asked again without (the stand-in refuses every
# order), and Pebble then completes the renewal.
: >"$T/ari.log.orders"
ari_start "2000-01-01T00:00:00Z,2000-01-02T00:00:00Z"
renew
expect_rc 1 "replaces: the stand-in refuses the order"
check "replaces: newOrder carried the old certificate's CertID" test "$(sed -n 1p "$T/ari.log.orders")" = "replaces=$certid"
check "replaces: refused, the order is asked again without it" test "$(sed -n 2p "$T/ari.log.orders")" = "replaces=-"
expect_err "ordering without \"replaces\"" "replaces: the refusal is a warning"
ari_stop
ari_start -
renew --force
expect_rc 1 "replaces: without renewalInfo, the stand-in refuses the order"
check "replaces: without ARI, one newOrder and no replaces" test "$(sed -n '3,$p' "$T/ari.log.orders")" = "replaces=-"
ari_stop
renew
expect_rc 0 "replaces: Pebble completes the pending renewal"
check "replaces: invariants" invariants

# -- a token that refuses to change labels ------------------------------------------------------------
if [ -n "$LABEL_LOCK_MODULE" ] && [ -f "$LABEL_LOCK_MODULE" ]; then
  export LABEL_LOCK_TARGET=$SOFTHSM_MODULE
  new_token imm 1234
  Q=$T/imm.ini
  cp "$P" "$Q"
  mkdir -p "$T/imm-state" "$T/imm-o"
  ini_set "$Q" token uri "pkcs11:token=imm"
  ini_set "$Q" token module "$LABEL_LOCK_MODULE"
  ini_set "$Q" key label imm
  ini_set "$Q" ca account-key "pkcs11:token=imm;object=acme-account"
  ini_set "$Q" output state-dir "$T/imm-state"
  ini_set "$Q" output cert "$T/imm-o/cert.pem"
  ini_set "$Q" output chain -
  ini_set "$Q" output fullchain -
  ini_set "$Q" hooks deploy "echo \"\$P11ENROLL_KEY_URI\" > '$T/imm-hook'"
  run renew --profile "$Q"
  expect_rc 0 "immutable labels: first renewal"
  expect_err "refuses to change labels" "immutable labels: says so"
  c1=$(jq -r .current_id "$T/imm-state/renew.json")
  check "immutable labels: the state keeps the current id" bash -c 'jq -e ".labels_immutable == true" "$1" >/dev/null && test ${#2} = 32' _ "$T/imm-state/renew.json" "$c1"
  check "immutable labels: the hook gets a URI with the id" grep -q "id=" "$T/imm-hook"
  run renew --profile "$Q"
  expect_rc 3 "immutable labels: then not due"
  run renew --profile "$Q" --force
  expect_rc 0 "immutable labels: a second renewal"
  c2=$(jq -r .current_id "$T/imm-state/renew.json")
  check "immutable labels: a new current id, the old one retired by id" bash -c '
    test "$2" != "$3" && jq -e --arg id "$2" "[.retired[].id] == [\$id]" "$1" >/dev/null' _ "$T/imm-state/renew.json" "$c1" "$c2"
  run status --profile "$Q" --json
  check "immutable labels: status finds the current key by id" bash -c 'jq -e --arg id "$2" ".current.key_id == \$id and .labels_immutable" <<<"$1" >/dev/null' _ "$OUT" "$c2"
  a=$(GNUTLS_PIN=1234 p11tool --provider "$SOFTHSM_MODULE" --login --export-pubkey \
      "pkcs11:token=imm;id=$(sed 's/../%&/g' <<<"$c2");type=public" 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
  b=$(openssl x509 -in "$T/imm-o/cert.pem" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
  check "immutable labels: the certificate is the current key's (by id)" test "$a" = "$b" -a "$a" != "$EMPTY_SHA"
fi

finish
