#!/usr/bin/env bash
# Issue 12: PKCS#11 call counts that cannot silently regress.  Counts are
# deterministic, so this asserts them (timings stay in scripts/bench):
#  - `csr --new-key` makes the same number of calls on a token holding 1 key
#    and one holding 200 (flat in the token's size), and at most LIMIT;
#  - a `renew` that is not due makes at most RENEW_LIMIT calls, logged in (a
#    wrong PIN fails it, exit 1, as cli.md says), also with a retired pair not
#    yet past retire-after; a pair that is not whole is looked at closer (a
#    deleted private key makes the run due, as before);
#  - the minimal program (bench/minimal_keygen_csr) makes exactly its 14 on
#    both tokens, which shows the counting itself works.
# Counted with OpenSC's pkcs11-spy in front of SoftHSM: every C_ line of its log.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${MINIMAL_KEYGEN_CSR:=$BUILDDIR/bench/minimal_keygen_csr}"
# Issue 12 asks for at most 16 (bench/calls.md names each call).  That holds
# where the module shows one slot (through p11-kit remoting, the network-HSM
# case, asserted below).  SoftHSM adds an empty slot, and cli.md makes a URI
# that matches two tokens an error, so every slot's C_GetTokenInfo is read:
# 16 plus one call per extra slot there.
LIMIT=16
RENEW_LIMIT=16    # a renew that is not due (34 before the token-layer batching, then 22)
FLOOR=14          # the minimal program's calls

SPY=$(for m in /usr/lib/*/pkcs11-spy.so /usr/lib/*/pkcs11/pkcs11-spy.so; do [ -f "$m" ] && echo "$m" && break; done)
if [ -z "$SPY" ] || [ ! -x "$MINIMAL_KEYGEN_CSR" ]; then
  echo "1..0 # SKIP pkcs11-spy (opensc) or bench/minimal_keygen_csr missing"
  exit 77
fi
export P11ENROLL_PIN=1234

# One token per SoftHSM directory, so both have the same slot list.
tokdir() { # tokdir NAME KEYS: a token "NAME" holding KEYS ec:p256 key pairs
  "$SRCDIR/scripts/softhsm-token" --dir "$T/$1" --label "$1" >/dev/null
  SOFTHSM2_CONF="$T/$1/softhsm2.conf" "$MINIMAL_KEYGEN_CSR" -n "$2" "$SOFTHSM_MODULE" "$1" fill \
    ec:p256 "$T/$1/fill.csr" fill.example
}
# spied NAME ARGS...: runs ARGS (a command) on token dir NAME through the spy;
# sets RC, OUT, ERR and CALLS (the number of C_ calls) and CALL_LIST.
spied() {
  local name=$1; shift
  rm -f "$T/spy.log"
  SOFTHSM2_CONF="$T/$name/softhsm2.conf" PKCS11SPY="$SOFTHSM_MODULE" PKCS11SPY_OUTPUT="$T/spy.log" \
    runsh "$@"
  CALLS=$(grep -cE '^[0-9]+: C_' "$T/spy.log" 2>/dev/null)
  CALL_LIST=$(grep -oE '^[0-9]+: C_[A-Za-z]+' "$T/spy.log" 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
}
# profile NAME LABEL: the seed profile on token NAME through the spy module.
profile() {
  seed_profile "$T/$1.ini" "$1" "$2" ec:p256
  ini_set "$T/$1.ini" token module "$SPY"
  ini_set "$T/$1.ini" ca ca-bundle "$T/ca/ca.pem"
  # Nothing listens there: renew's ARI look-up fails fast and falls back.
  ini_set "$T/$1.ini" ca directory "https://127.0.0.1:$(free_port)/dir"
  echo "$T/$1.ini"
}
make_ca "$T/ca" "callcount test CA"
tokdir one 1
tokdir many 200

declare -A csr_calls
for name in one many; do
  spied "$name" "$MINIMAL_KEYGEN_CSR" "$SPY" "$name" floor ec:p256 "$T/$name-floor.csr" sip.contoso.com
  check "minimal program on $name: $FLOOR calls (got $CALLS: $CALL_LIST)" test "$CALLS" -eq "$FLOOR"
  prof=$(profile "$name" "fresh-$name")
  spied "$name" "$P11ENROLL" csr --profile "$prof" --new-key --out "$T/$name.csr"
  expect_rc 0 "csr --new-key on $name"
  check "csr --new-key on $name: the CSR verifies" \
    bash -c 'openssl req -in "$1" -verify -noout 2>&1 | grep -q "verify OK"' _ "$T/$name.csr"
  csr_calls[$name]=$CALLS
  echo "# csr --new-key on $name: $CALLS calls: $CALL_LIST"
done
check "csr --new-key: flat in the token's size (1 key: ${csr_calls[one]}, 200 keys: ${csr_calls[many]})" \
  test "${csr_calls[one]}" -eq "${csr_calls[many]}"
slots=$(grep -c 'C_GetTokenInfo' <<<"${CALL_LIST// /$'\n'}")
check "csr --new-key: one C_GetTokenInfo per SoftHSM slot (2: the token and SoftHSM's empty one; got $slots)" \
  test "$slots" -eq 2
check "csr --new-key: at most $LIMIT PKCS#11 calls plus one per extra slot (got ${csr_calls[one]}, $slots slots)" \
  test "${csr_calls[one]}" -le $((LIMIT + slots - 1))

# The same through p11-kit remoting (p11-kit server in front of SoftHSM, one slot):
# every call is a round trip to the server there.
"$SRCDIR/scripts/remote-token" --label rem --pin 1234 --dir "$T/rem" >"$T/rem.env"
at_exit "'$SRCDIR/scripts/remote-token' --stop '$T/rem'"
remote_module=$(source "$T/rem.env" && echo "$P11E_REMOTE_MODULE")
remote_address=$(source "$T/rem.env" && echo "$P11_KIT_SERVER_ADDRESS")
seed_profile "$T/rem.ini" rem remote-key ec:p256
ini_set "$T/rem.ini" token module "$SPY"
rm -f "$T/spy.log"
P11_KIT_SERVER_ADDRESS=$remote_address PKCS11SPY="$remote_module" PKCS11SPY_OUTPUT="$T/spy.log" \
  run csr --profile "$T/rem.ini" --new-key --out "$T/rem.csr"
expect_rc 0 "csr --new-key through p11-kit remoting"
CALLS=$(grep -cE '^[0-9]+: C_' "$T/spy.log" 2>/dev/null)
echo "# csr --new-key through p11-kit remoting: $CALLS calls: $(grep -oE '^[0-9]+: C_[A-Za-z]+' "$T/spy.log" | awk '{print $2}' | tr '\n' ' ')"
check "csr --new-key through p11-kit remoting: at most $LIMIT PKCS#11 calls (got $CALLS)" \
  test "$CALLS" -le "$LIMIT"

# renew when not due: a certificate from a local CA valid 10 days, imported
# with the state written; renew then has nothing to do (exit 3).
prof=$T/one.ini
issue_cert "$T/ca" "$T/one.csr" "$T/one.pem"
SOFTHSM2_CONF="$T/one/softhsm2.conf" run import --token pkcs11:token=one --cert "$T/one.pem" \
  --chain "$T/ca/ca.pem" --profile "$prof" --module "$SOFTHSM_MODULE"
expect_rc 0 "import the certificate for the not-due renew"
spied one "$P11ENROLL" renew --profile "$prof"
expect_rc 3 "renew right after import: not due"
echo "# renew (not due): $CALLS calls: $CALL_LIST"
check "renew (not due): logs in once (got: $CALL_LIST)" test "$(grep -o C_Login <<<"$CALL_LIST" | wc -l)" -eq 1
check "renew (not due): at most $RENEW_LIMIT PKCS#11 calls (got $CALLS)" test "$CALLS" -le "$RENEW_LIMIT"

# renew not due with a fresh ARI cache (as a renew that asked the CA leaves it; renew.sh
# fills it from a stand-in ARI server): no network at all, not even an HTTP client.
jq -n --arg c "$(ari_cert_id "$T/one.pem")" --argjson now "$(date +%s)" '{version: 1,
  label: "fresh-one", ari: {cert_id: $c, start: ($now + 30 * 86400), end: ($now + 31 * 86400),
  next_poll: ($now + 3600)}}' >"$T/state/renew.json"
spied one strace -f -qq -e trace=connect,openat -o "$T/strace.log" "$P11ENROLL" -v renew --profile "$prof"
expect_rc 3 "renew, fresh ARI cache: not due"
expect_out "ARI" "renew, fresh ARI cache: the cached window decides"
check "renew, fresh ARI cache: no connect() to any IP address" \
  bash -c '! grep -E "connect\(.*AF_INET" "$1"' _ "$T/strace.log"
check "renew, fresh ARI cache: libcurl not even loaded" bash -c '! grep -q libcurl "$1"' _ "$T/strace.log"
expect_no_err "renewal information" "renew, fresh ARI cache: no ARI fetch or failure under -v"
echo "# renew (not due, ARI cached): $CALLS calls: $CALL_LIST"
check "renew (not due, ARI cached): at most $RENEW_LIMIT PKCS#11 calls (got $CALLS)" \
  test "$CALLS" -le "$RENEW_LIMIT"

# A wrong PIN fails the daily run at once (exit 1), not only once a renewal is due.
printf 'wrong-pin\n' >"$T/pin"
spied one "$P11ENROLL" renew --profile "$prof"
expect_rc 1 "renew (not due) with a wrong PIN: exit 1"
expect_err "PIN" "renew (not due) with a wrong PIN: says so"
printf '1234\n' >"$T/pin"

# A retired pair (the usual state after a renewal) not yet past retire-after
# (7d in the seed profile) is not the token's business: no key lookup for it.
# One past it is destroyed (its id has no objects here).
retire() { # retire AGE_SECONDS: one retired pair of that age in the state
  jq --argjson at $(($(date +%s) - $1)) '.retired = [{id: "0123456789abcdef0123456789abcdef",
    label: "fresh-one.retired.1", retired_at: $at}]' "$T/state/renew.json" >"$T/state.new" &&
    mv "$T/state.new" "$T/state/renew.json"
}
retire 3600
spied one "$P11ENROLL" renew --profile "$prof"
expect_rc 3 "renew, a retired pair kept for retire-after: not due"
check "renew, a retired pair kept: at most $RENEW_LIMIT calls (got $CALLS: $CALL_LIST)" \
  test "$CALLS" -le "$RENEW_LIMIT"
check "renew, a retired pair kept: still in the state" jq -e '.retired | length == 1' "$T/state/renew.json"
retire $((8 * 86400))
spied one "$P11ENROLL" renew --profile "$prof"
expect_rc 3 "renew, a retired pair past retire-after: not due"
check "renew, a retired pair past retire-after: gone from the state" \
  jq -e '.retired | length == 0' "$T/state/renew.json"
spied one "$P11ENROLL" renew --profile "$prof" --force --dry-run
expect_rc 0 "renew --force --dry-run: due"
check "renew --force --dry-run: logs in (the current pair is looked up)" grep -q C_Login <<<"$CALL_LIST"

# keys and status on tokens with 1 and 200 key pairs (issue 12): listing every key
# grows with the token by design, but by at most 1 call per object added (one search
# per class with a large handle buffer, one batched C_GetAttributeValue per object; no
# search per object).  status lists the keys and scans for strays from that one pass
# (token_objects_read()), not a pass each.  Fresh tokens, so the objects added are
# exactly 2 x 199.
declare -A obj_calls
OBJ_ADDED=$((2 * 199))
declare -A nkeys=([kone]=1 [kmany]=200)
tokdir kone 1
tokdir kmany 200
for name in kone kmany; do
  spied "$name" "$P11ENROLL" keys --token "pkcs11:token=$name" --module "$SPY"
  expect_rc 0 "keys on $name"
  check "keys on $name: every key listed" test "$(grep -c '^  id ' "$T/out")" -eq "${nkeys[$name]}"
  obj_calls[keys-$name]=$CALLS
  sprof=$(profile "$name" "st-$name")
  ini_set "$sprof" output state-dir "$T/state-$name"
  spied "$name" "$P11ENROLL" status --profile "$sprof"
  expect_rc 0 "status on $name"
  obj_calls[status-$name]=$CALLS
done
for cmd in keys status; do
  one=${obj_calls[$cmd-kone]} many=${obj_calls[$cmd-kmany]}
  echo "# $cmd: $one calls with 1 key, $many with 200 ($(( (many - one) * 100 / OBJ_ADDED )) per 100 objects added)"
  check "$cmd: at most 1 PKCS#11 call per object added (1 key: $one, 200 keys: $many, $OBJ_ADDED objects added)" \
    test $((many - one)) -le $((OBJ_ADDED + 8))
done

# Peak RSS under 16 MiB with --module SoftHSM (issue 12): memory, unlike time, is
# deterministic enough to assert.  Without the spy in front, as a user runs it.
ini_set "$prof" token module "$SOFTHSM_MODULE"
export SOFTHSM2_CONF=$T/one/softhsm2.conf
peak_kib renew --profile "$prof"
expect_rc 3 "RSS: renew (not due, ARI cached)"
check "RSS: renew (not due) peaks under 16 MiB (got $KIB KiB)" test "$KIB" -lt $((16 * 1024))
ini_set "$prof" key label rss-one
peak_kib csr --profile "$prof" --new-key --out "$T/rss.csr"
expect_rc 0 "RSS: csr --new-key"
check "RSS: csr --new-key peaks under 16 MiB (got $KIB KiB)" test "$KIB" -lt $((16 * 1024))

# The glance sees the whole pair: with its private key deleted (by hand, say) the
# run is not "not due" but looks closer, as before (a dry run: nothing is made).
ini_set "$prof" key label fresh-one
run renew --profile "$prof" --dry-run
expect_rc 3 "renew --dry-run, the pair whole: not due"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label one --login --pin 1234 \
  --delete-object --type privkey --label fresh-one >/dev/null 2>&1
run renew --profile "$prof" --dry-run
check "renew --dry-run, the private key deleted: not 'not due' (rc $RC: $OUT)" test "$RC" -ne 3
finish
