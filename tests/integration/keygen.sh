#!/usr/bin/env bash
# Issue 2: tokens, keygen, keys against real SoftHSM tokens; PIN sources;
# bad input; a broken module beside a good one; lookup cost with pkcs11-spy.
source "$(dirname "$0")/lib.sh"

new_token edge 1234
new_token other 1234
export P11ENROLL_PIN=1234
TOKEN='pkcs11:token=edge'
ptool() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin 1234 "$@"; }

# -- tokens ----------------------------------------------------------------
run tokens --json
expect_rc 0 "tokens --json"
check "tokens lists the edge token with its key types" \
  bash -c 'jq -e ".tokens[] | select(.label==\"edge\") | .keygen | index(\"ed25519\") and index(\"ec:p521\") and index(\"rsa:4096\")" "$1" >/dev/null' _ "$T/out"
check "tokens shows the SoftHSM family and login flag" \
  bash -c 'jq -e ".tokens[] | select(.label==\"edge\") | .family==\"SoftHSM 2\" and .flags.login_required" "$1" >/dev/null' _ "$T/out"
run tokens
expect_out "keygen        rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ec:p521 ed25519" "tokens (human)"

# -- keygen of every type, checked by independent tools -----------------------
for t in rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ec:p521 ed25519; do
  l="k-${t/:/-}"
  run keygen --token "$TOKEN" --label "$l" --type "$t" --pubout "$T/$l.pub" --json
  expect_rc 0 "keygen $t"
  check "keygen $t: JSON names type and 64-hex SPKI hash" \
    bash -c 'jq -e --arg t "$2" ".type==\$t and (.spki_sha256|test(\"^[0-9a-f]{64}$\")) and (.uri|startswith(\"pkcs11:\"))" "$1" >/dev/null' _ "$T/out" "$t"
  spki=$(jq -r .spki_sha256 "$T/out")
  check "keygen $t: --pubout SPKI hash matches" \
    test "$(openssl pkey -pubin -in "$T/$l.pub" -outform DER | sha256sum | cut -d' ' -f1)" = "$spki"
  ptool --list-objects --type privkey --label "$l" >"$T/lo" 2>&1
  check "keygen $t: pkcs11-tool shows always sensitive, never extractable, local" \
    grep -q 'Access: *sensitive, always sensitive, never extractable, local' "$T/lo"
  check "keygen $t: pkcs11-tool shows sign-only usage" grep -q 'Usage: *sign$' "$T/lo"
  "$TRY_EXTRACT" "$SOFTHSM_MODULE" edge 1234 "$l" >"$T/x" 2>&1
  check "keygen $t: reading or wrapping the private key fails" \
    bash -c '[ $? -eq 0 ] && grep -q "stayed on the token" "$1"' _ "$T/x"
  # pkcs11-tool (OpenSC 0.23) refuses every private-key read: nothing may come out.
  ptool --read-object --type privkey --label "$l" -o "$T/priv.der" >/dev/null 2>&1
  check "keygen $t: pkcs11-tool --read-object writes no private key" test ! -s "$T/priv.der"
done

run keys --token "$TOKEN" --json
expect_rc 0 "keys --json"
check "keys lists 7 keys, all sensitive and never extractable" \
  bash -c 'jq -e "(.keys|length)==7 and all(.keys[]; .sensitive and .never_extractable and (.extractable|not) and .local and .certificate==null)" "$1" >/dev/null' _ "$T/out"
run keys --token "$TOKEN"
expect_out "ec:p256, sensitive, never extractable, generated on the token" "keys (human)"

# -- --id, duplicates --------------------------------------------------------
run keygen --token "$TOKEN" --label with-id --id 0a0b0c --type ec:p256
expect_rc 0 "keygen --id"
expect_out "id           0a0b0c" "keygen --id is used"
before=$(ptool --list-objects 2>/dev/null | grep -c 'Object;')
run keygen --token "$TOKEN" --label with-id --type ec:p256
expect_rc 1 "duplicate label"
expect_err "already has a key labelled with-id" "duplicate label message"
run keygen --token "$TOKEN" --label fresh --id 0A:0B:0C --type ec:p256
expect_rc 1 "duplicate id"
expect_err "already has an object with id 0a0b0c" "duplicate id message"
check "token unchanged after refused keygens" \
  test "$(ptool --list-objects 2>/dev/null | grep -c 'Object;')" -eq "$before"

# -- usage and input errors (exit 2, before any token I/O) --------------------
run keygen --token "$TOKEN" --label x --type rsa:1024
expect_rc 2 "unknown key type"
expect_err "--type rsa:1024: unknown key type" "unknown key type message"
run keygen --token "$TOKEN" --label x --type ec:p256 --id zz
expect_rc 2 "bad --id"
run keygen --label x --type ec:p256
expect_rc 2 "missing --token"
expect_err "p11enroll: keygen: --token, --label and --type are required" "missing option message"
run keygen --token "$TOKEN" --label x --type ec:p256 --bogus
expect_rc 2 "unknown option"
run keygen --token "$TOKEN" --label x --type nope --json
check "--json error object" bash -c 'jq -e ".error.code==\"E_KEY_TYPE\"" "$1" >/dev/null' _ "$T/out"
run keygen --token 'token=edge' --label x --type ec:p256
expect_rc 2 "not a pkcs11 URI"
run keygen --help
expect_rc 0 "keygen --help"
expect_out "never extractable" "keygen --help explains"

# -- token selection ----------------------------------------------------------
run keys --token 'pkcs11:token=nosuch'
expect_rc 1 "missing token"
expect_err 'no token matches pkcs11:token=nosuch; tokens present:' "missing token lists candidates"
expect_err '"edge" (serial' "candidate list names the edge token"
run keys --token 'pkcs11:model=SoftHSM%20v2;token='
run keys --token 'pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2'
expect_rc 1 "ambiguous URI"
expect_err "tokens match" "ambiguous URI message"
expect_err '"other"' "ambiguous URI lists the candidates"
serial=$(jq -r '.tokens[] | select(.label=="edge") | .serial' < <("$P11ENROLL" tokens --json))
run keys --token "pkcs11:serial=$serial" --module "$SOFTHSM_MODULE"
expect_rc 0 "select by serial with --module"

run keys --token 'pkcs11:token=nosuch?pin-value=SECRET99'
expect_rc 1 "missing token named with a pin-value"
expect_err "pin-value=(hidden)" "the URI is shown with the PIN hidden"
expect_no_err "SECRET99" "the PIN never reaches stderr"
run keys --token 'pkcs11:token=edge;bogus=1?pin-value=SECRET99' --json
expect_no_err "SECRET99" "bad URI: the PIN never reaches stderr"
check "bad URI: the PIN never reaches the JSON" bash -c '! grep -q SECRET99 "$1"' _ "$T/out"
# A pin-value at the start of the path (p11-kit accepts it there too).
run keygen --token 'pkcs11:pin-value=SECRET77;token=nosuch' --label x --type ec:p256
expect_rc 1 "missing token named with a leading pin-value"
expect_err "pin-value=(hidden)" "leading pin-value: the URI is shown with the PIN hidden"
expect_no_err "SECRET77" "leading pin-value: the PIN never reaches stderr"
check "leading pin-value: the PIN never reaches stdout" bash -c '! grep -q SECRET77 "$1"' _ "$T/out"
run keygen --token 'pkcs11:pin-value=SECRET77;token=nosuch' --label x --type ec:p256 --json
expect_rc 1 "missing token named with a leading pin-value (--json)"
expect_no_err "SECRET77" "leading pin-value --json: the PIN never reaches stderr"
check "leading pin-value --json: the PIN never reaches the JSON" bash -c '! grep -q SECRET77 "$1"' _ "$T/out"
check "leading pin-value --json: an error object is printed" \
  bash -c 'jq -e ".error.code" "$1" >/dev/null' _ "$T/out"
n0=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin 1234 --list-objects 2>/dev/null | grep -c 'Object;')
run keygen --token "$TOKEN" --label pub-nodir --type ec:p256 --pubout "$T/nodir/x.pem"
expect_rc 1 "--pubout into a missing directory"
check "--pubout failure leaves no key" test "$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin 1234 --list-objects 2>/dev/null | grep -c 'Object;')" -eq "$n0"
run keygen --token "$TOKEN" --label $'bad\xffname' --type ec:p256
expect_rc 2 "a label that is not UTF-8"

# -- PINs ---------------------------------------------------------------------
unset P11ENROLL_PIN
run keys --token "$TOKEN"
expect_rc 2 "no PIN source"
expect_err "needs a PIN" "no PIN message"
printf '1234\n' >"$T/pin-nl"; printf '1234' >"$T/pin"; chmod 600 "$T/pin-nl" "$T/pin"
run keys --token "$TOKEN" --pin-file "$T/pin-nl"
expect_rc 0 "PIN file with trailing newline"
run keys --token "$TOKEN" --pin-file "$T/pin"
expect_rc 0 "PIN file without newline"
run keys --token "pkcs11:token=edge?pin-source=file:$T/pin-nl"
expect_rc 0 "URI pin-source"
P11ENROLL_PIN=1234 run keys --token "$TOKEN"
expect_rc 0 "PIN from P11ENROLL_PIN"
run keys --token "$TOKEN" --pin-file "$T/nope"
expect_rc 2 "unreadable PIN file"
expect_err "PIN file $T/nope" "unreadable PIN file is named"
printf '9999\n' >"$T/bad"; chmod 600 "$T/bad"
run keys --token "$TOKEN" --pin-file "$T/bad"
expect_rc 1 "wrong PIN"
expect_err "PIN incorrect (from PIN file); not retried" "wrong PIN message"
mkfifo "$T/fifo"
runsh timeout 10 "$P11ENROLL" keys --token "$TOKEN" --pin-file "$T/fifo"
expect_rc 2 "a FIFO as PIN file is refused, not waited on"
expect_err "not a regular file" "FIFO message"
# A PIN file others can read, or group or others can write, is refused before
# any login (issue 11, finding 2); owner-only and group-readable files are used.
for m in 644 664 606 620 602; do
  chmod "$m" "$T/pin"
  run keys --token "$TOKEN" --pin-file "$T/pin"
  expect_rc 2 "PIN file mode 0$m is refused"
  expect_err "PIN file $T/pin has mode 0$m" "mode 0$m: the file and its mode are named"
  expect_err "chmod 0600 (or 0640 for a service group)" "mode 0$m: the message says which mode to set"
  expect_no_err "1234" "mode 0$m: the PIN is not printed"
done
for m in 600 400 640 440; do
  chmod "$m" "$T/pin"
  run keys --token "$TOKEN" --pin-file "$T/pin"
  expect_rc 0 "PIN file mode 0$m is used"
  expect_no_err "mode" "mode 0$m: no warning"
done
chmod 644 "$T/pin-nl"
run keys --token "pkcs11:token=edge?pin-source=file:$T/pin-nl"
expect_rc 2 "a loose URI pin-source file is refused too"
chmod 600 "$T/pin" "$T/pin-nl"

# SoftHSM has no PIN retry counter, so the locked / final-try refusals are
# covered by the unit test of token_login_precheck().

# -- a broken module registered beside SoftHSM --------------------------------
export P11ENROLL_PIN=1234
# p11-kit ignores user configuration for root, so this part runs as nobody
# with a private HOME holding the module registration.
mkdir -p "$T/home/.config/pkcs11/modules"
printf 'module: %s\n' "$BROKEN_MODULE" >"$T/home/.config/pkcs11/modules/broken.module"
printf 'module: %s\n' "$SOFTHSM_MODULE" >"$T/home/.config/pkcs11/modules/softhsm.module"
asuser=(env HOME="$T/home")
if [ "$(id -u)" -eq 0 ]; then
  chmod -R a+rwX "$T"; chmod 755 "$(dirname "$P11ENROLL")"
  asuser=(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$T/home")
fi
runsh "${asuser[@]}" "$P11ENROLL" -v keys --token "$TOKEN"
expect_rc 0 "broken module beside a good one: still works"
expect_err "p11e-broken-module.so skipped: C_Initialize: device error" "broken module noted under -v"
runsh "${asuser[@]}" "$P11ENROLL" keys --token "$TOKEN"
expect_no_err "broken" "broken module is quiet without -v"

# -- no core dumps (issue 11) ---------------------------------------------------
# Observed from outside on a running p11enroll that waits at the PIN prompt
# (a pty from script(1), no other PIN source): its core limit is 0 (soft and
# hard), and it is not dumpable, which the kernel shows by giving its /proc
# entries to root although it runs as another user (nobody when the test runs
# as root).
runner=("${asuser[@]}")
[ "$(id -u)" -eq 0 ] || runner=(env)
# script(1) reads a FIFO that stays open and silent: with </dev/null it would
# pass an end-of-file to the pty and p11enroll would leave its prompt at once.
mkfifo "$T/hold"; exec 7<>"$T/hold"
"${runner[@]}" script -qfec "env -u P11ENROLL_PIN '$P11ENROLL' keys --token '$TOKEN' --module '$SOFTHSM_MODULE'" /dev/null \
  <"$T/hold" >/dev/null 2>&1 &
spid=$!
pid=
for _ in $(seq 1 100); do
  pid=$(pgrep -f -n "^$P11ENROLL keys --token $TOKEN --module" || true)
  [ -n "$pid" ] && break
  sleep 0.1
done
sleep 0.5
check "a waiting p11enroll was found" test -n "$pid"
check "its core file limit is 0, soft and hard" \
  grep -qE '^Max core file size +0 +0 ' "/proc/${pid:-0}/limits"
uid=$(awk '/^Uid:/{print $2}' "/proc/${pid:-0}/status" 2>/dev/null)
check "it runs as a user other than root (uid ${uid:-?})" test "${uid:-0}" -ne 0
check "it is not dumpable: /proc/$pid is root's, not uid ${uid:-?}'s" \
  test "$(stat -c %u "/proc/${pid:-0}/status" 2>/dev/null)" = 0
[ -n "$pid" ] && kill "$pid" 2>/dev/null
exec 7>&-
wait "$spid" 2>/dev/null

# -- lookup cost does not grow with the number of objects ---------------------
SPY=$(for m in /usr/lib/*/pkcs11-spy.so /usr/lib/*/pkcs11/pkcs11-spy.so; do [ -f "$m" ] && echo "$m" && break; done)
calls() { # TOKEN-LABEL ARGS... -> number of PKCS#11 calls
  local tl=$1; shift
  PKCS11SPY="$SOFTHSM_MODULE" PKCS11SPY_OUTPUT="$T/spy.log" "$P11ENROLL" "$@" --module "$SPY" >/dev/null 2>&1
  grep -cE '^[0-9]+: C_' "$T/spy.log"; rm -f "$T/spy.log"
}
new_token small 1234; new_token big 1234
"$P11ENROLL" -q keygen --token pkcs11:token=small --label seed --type ec:p256 --module "$SOFTHSM_MODULE" >/dev/null
for i in $(seq 1 200); do
  "$P11ENROLL" -q keygen --token pkcs11:token=big --label "k$i" --type ec:p256 --module "$SOFTHSM_MODULE" >/dev/null || break
done
c1=$(calls small keygen --token pkcs11:token=small --label probe --type ec:p256)
c200=$(calls big keygen --token pkcs11:token=big --label probe --type ec:p256)
echo "# keygen (label and id lookups): $c1 calls with 1 key, $c200 with 200 keys"
check "lookups by label and id cost the same with 1 and 200 keys ($c1 vs $c200)" test "$c1" -eq "$c200"
k1=$(calls small keys --token pkcs11:token=small)
k200=$(calls big keys --token pkcs11:token=big)
echo "# keys: $k1 calls for 2 keys, $k200 for 201 keys"
per=$(( (k200 - k1) / 199 ))
check "keys costs a constant number of calls per key ($per)" test $(( k200 - k1 - per * 199 )) -le 4

finish
