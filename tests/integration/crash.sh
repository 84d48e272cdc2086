#!/usr/bin/env bash
# Issue 11, finding 8: kill -9 at random moments, not only at the named
# fault points.  Against a real SoftHSM token and a real Pebble, `renew
# --force` (and a first `enroll`) is killed with SIGKILL after a random delay
# (uniform over a little more than one timed unkilled run, or 0..CRASH_MAX_DELAY
# and 0..CRASH_ENROLL_MAX_DELAY s when set), then run again unkilled; after each
# cycle: one private key, one public key and one certificate labelled L
# that match, the [output] files the token's, every other object a complete
# pair that the journal or the retired list accounts for, the ACME account
# key unchanged.  CRASH_CYCLES=N soaks longer (default 60: about 2 minutes).
# Then the same on a TPM 2.0 token (crash_tpm.sh), where labels cannot change
# (CRASH_TPM=no leaves it out of a SoftHSM soak).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${P11ENROLL_FAULTS:?set by meson (build/tests/p11enroll-faults)}"

if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null; then
  echo "1..0 # SKIP pebble not installed"
  exit 77
fi

CYCLES=${CRASH_CYCLES:-60}
ENROLL_CYCLES=${CRASH_ENROLL_CYCLES:-$(( (CYCLES + 4) / 5 ))}
MAXD=${CRASH_MAX_DELAY:-1.5}
L=edge-external
EMPTY_SHA=$(sha256sum </dev/null)
new_token edge 1234
P=$T/p.ini
# shellcheck source=rotate_lib.sh
source "$(dirname "$0")/rotate_lib.sh"
pebble_profile "$P" --validity 3600
ini_set "$P" renewal retire-after 0s

TOK=edge PMOD=$SOFTHSM_MODULE
ptool() { pkcs11-tool --module "$PMOD" --token-label "$TOK" --login --pin 1234 "$@" 2>/dev/null; }
account_sha() { ptool --read-object --type pubkey --label acme-account -o "$T/acct.pub" >/dev/null && sha256sum <"$T/acct.pub"; }
rand_delay() { python3 -c "import random; print('%.3f' % random.uniform(0, $MAXD))"; }

# killed DELAY ARGS...: run p11enroll ARGS and SIGKILL it after DELAY seconds.
killed() {
  local d=$1; shift
  "$P11ENROLL" "$@" >"$T/kout" 2>"$T/kerr" </dev/null &
  local pid=$!
  sleep "$d"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# inv_or_repair PROFILE: the invariants, or, when they fail, the same after
# `repair --yes` removed what a kill left that nothing can use (a key or
# certificate whose creation was cut short before its label and id).
inv_or_repair() {
  local why
  why=$(invariants) && return 0
  "$P11ENROLL" repair --profile "$1" --yes >/dev/null 2>"$T/rerr" || { echo "$why; repair failed: $(cat "$T/rerr")"; return 1; }
  grep -q "^p11enroll: removed:" "$T/rerr" || { echo "$why"; return 1; }
  REPAIRED=$((REPAIRED + 1))
  invariants || { echo "$why (after repair)"; return 1; }
}
REPAIRED=0
# cycle_failed WHAT: say what broke, and what the token holds.
cycle_failed() {
  echo "# $1"
  ptool --list-objects | grep -E 'Object|label|ID' | sed 's/^/#   /'
}

# SoftHSM rewrites its token.object in place at every C_Login (ftruncate,
# then write): a kill in between leaves it empty and the whole token is gone
# (tokens/softhsm2.conf).  Nothing p11enroll does can prevent or repair that;
# an operator restores the file from a copy.  The test does the same, and
# counts it, so that the cycles go on checking what p11enroll can do.
TOKEN_TORN=0
keep_token_files() { local f; for f in "$T"/tokens/*/token.object; do [ -e "$f.copy" ] || cp "$f" "$f.copy"; done; }
heal_token_files() {
  local f
  for f in "$T"/tokens/*/token.object; do
    if [ "$(stat -c %s "$f")" -lt "$(stat -c %s "$f.copy")" ]; then
      cp "$f.copy" "$f"; TOKEN_TORN=$((TOKEN_TORN + 1))
    fi
  done
}

# Files named like a temp file of p11enroll's that nobody will remove.
stray_tmp() { find "$T/o" "$T/state" -name '.p11enroll-tmp.*' | head -3; }

run renew --profile "$P"
expect_rc 0 "first renew: issued"
check "first renew: invariants" invariants
ACCT=$(account_sha)
check "the account key is on the token" test -n "$ACCT" -a "$ACCT" != "$EMPTY_SHA"

# -- torn objects on purpose: what a kill inside SoftHSM's in-place rewrite leaves --------
# The token's object files (the private key's attributes are encrypted, so
# its file does not hold its id in clear; the public key's and the
# certificate's do, and only the certificate holds the names).
objfiles() { local f; for f in "$T"/tokens/*/*.object; do [ "${f##*/}" = token.object ] || echo "$f"; done; }
# pub_file ID: the public key object file of that id
# shellcheck disable=SC2046 # object file names are UUIDs: no blanks
pub_file() { python3 - "$1" $(objfiles) <<'PY'
import sys
idb = bytes.fromhex(sys.argv[1])
for f in sys.argv[2:]:
    d = open(f, "rb").read()
    if idb in d and b"contoso.com" not in d:
        print(f)
PY
}
# cert_file ID: the certificate object file of that id
# shellcheck disable=SC2046 # object file names are UUIDs: no blanks
cert_file() { python3 - "$1" $(objfiles) <<'PY'
import sys
idb = bytes.fromhex(sys.argv[1])
for f in sys.argv[2:]:
    d = open(f, "rb").read()
    if idb in d and b"contoso.com" in d:
        print(f)
PY
}
# priv_file ID FILES...: of the object files of one new pair (and its
# certificate), the one that does not hold the id in clear: the private key.
priv_file() { python3 - "$@" <<'PY'
import sys
idb = bytes.fromhex(sys.argv[1])
for f in sys.argv[2:]:
    if idb not in open(f, "rb").read():
        print(f)
PY
}
# tear FILE zero|half: an object file as a kill in the middle of its rewrite leaves it
tear() { if [ "$2" = zero ]; then : >"$1"; else truncate -s $(( $(stat -c %s "$1") / 2 )) "$1"; fi; }
key_id() { ptool --list-objects --type privkey | awk -v l="$1" '/^Private Key Object/{p=1} p && $1=="label:" {lab=$2} p && $1=="ID:" { if (lab==l) print $2; p=0 }'; }
pending_id() { jq -r '.txn.pending_id // empty' "$T/state/renew.json"; }
frenew() { P11ENROLL_FAULT=$1 "$P11ENROLL_FAULTS" renew --profile "$P" --force >/dev/null 2>&1 </dev/null; }

# (a) the old public key emptied (or half written) during the switch: the
# public key is rebuilt from the certificate, by renew and by --abandon.
for how in zero:renew half:renew zero:abandon; do
  mode=${how%%:*} act=${how#*:}
  old=$(key_id "$L")
  frenew switch
  f=$(pub_file "$old")
  check "(a) $how: found the old public key's object file" test -n "$f" -a "$(wc -l <<<"$f")" = 1
  tear "$f" "$mode"
  if [ "$act" = renew ]; then run renew --profile "$P"; else run renew --profile "$P" --abandon; fi
  expect_rc 0 "(a) old public key torn ($mode), then $act"
  expect_err "rebuilt it from its certificate" "(a) $how: says the public key was rebuilt"
  check "(a) $how: invariants" invariants
  [ "$act" = abandon ] && check "(a) $how: the old key is still current" test "$(key_id "$L")" = "$old"
done

# (b) the new private key emptied after its certificate was stored: --abandon
# removes every object of the pending pair, the certificate included; a
# plain renew removes them too, makes the pair again (under the same
# journalled id) and orders again; the old pair keeps the label meanwhile.
for act in abandon renew; do
  before=$(objfiles)
  frenew switch
  pend=$(pending_id)
  new=$(comm -13 <(echo "$before") <(objfiles))
  # shellcheck disable=SC2086 # object file names are UUIDs
  f=$(priv_file "$pend" $new)
  check "(b) $act: found the pending private key's object file" test -n "$pend" -a -n "$f" -a "$(wc -l <<<"$f")" = 1
  tear "$f" zero
  if [ "$act" = abandon ]; then
    run renew --profile "$P" --abandon
    expect_rc 0 "(b) the pending private key torn, then --abandon"
    check "(b) $act: nothing with the pending id is left" test "$(ptool --list-objects | grep -ci "ID: *$pend")" = 0
  else
    run renew --profile "$P"
    expect_rc 0 "(b) the pending private key torn, then renew"
    expect_err "making a new pair and ordering again" "(b) renew: says it makes the pair again"
  fi
  check "(b) $act: invariants" invariants
done

# (b') the OLD private key emptied by a kill inside its relabel (L to
# L.retired.<t>, fault "switch-half": after it; "switch": before it, so its
# public key and certificate are still L): the rerun switches the new pair
# in and removes what is left of the old one (its id is journalled), so
# that L names one whole pair.
for at in switch switch-half; do
  old=$(key_id "$L")
  frenew "$at"
  ptool --delete-object --type privkey --id "$old" >/dev/null
  check "(b') $at: the old private key is gone" test "$(ptool --list-objects --type privkey | grep -ci "ID: *$old")" = 0
  run renew --profile "$P"
  expect_rc 0 "(b') $at: the old private key torn, then renew"
  expect_err "lost its private key" "(b') $at: says what was left of the old key was removed"
  check "(b') $at: nothing with the old id is left" test "$(ptool --list-objects | grep -ci "ID: *$old")" = 0
  check "(b') $at: invariants" invariants
done

# The new pair's certificate emptied by a kill inside the switch (its
# relabel): the next run stores it again from the staged chain.
frenew files
newid=$(key_id "$L")
f=$(cert_file "$newid")
check "(a') found the new certificate's object file" test -n "$f" -a "$(wc -l <<<"$f")" = 1
tear "$f" zero
run renew --profile "$P"
expect_rc 0 "(a') the new certificate torn after the switch, then renew"
expect_err "stored it again from" "(a') says the certificate was stored again"
check "(a') invariants" invariants

# (c) objects that nothing can find: a certificate with neither label nor id,
# one labelled L without an id, and an object whose class cannot be read
# (its file cut to a few bytes).
# status reports them, repair shows what it would do, repair --yes removes them.
openssl x509 -in "$T/o/cert.pem" -outform DER -out "$T/stray.der"
before=$(objfiles)
ptool --write-object "$T/stray.der" --type cert >/dev/null
strays=$(comm -13 <(echo "$before") <(objfiles))
truncate -s 8 "$strays"
ptool --write-object "$T/stray.der" --type cert >/dev/null
ptool --write-object "$T/stray.der" --type cert --label "$L" >/dev/null
# Not p11enroll's: a certificate with a label of its own and no id is left alone.
ptool --write-object "$T/stray.der" --type cert --label "someone-else" >/dev/null
check "(c) four objects written" test "$(comm -13 <(echo "$before") <(objfiles) | wc -l)" = 4
run status --profile "$P"
expect_rc 0 "(c) status with stray objects"
expect_out "certificate: it has neither a label nor an id" "(c) status reports the certificate without label or id"
expect_out "its class cannot be read" "(c) status reports the object whose class cannot be read"
expect_out "certificate: it has p11enroll's label but no id" "(c) status reports the certificate labelled $L without an id"
check "(c) status: exactly three unreadable" test "$(grep -c '^unreadable' <<<"$OUT")" = 3
snap=$(ptool --list-objects | md5sum)
run repair --profile "$P"
expect_rc 0 "(c) repair without --yes"
expect_err "would remove: certificate" "(c) repair shows what it would remove"
expect_err "run again with --yes" "(c) repair says how to remove them"
check "(c) repair without --yes changes nothing" test "$(ptool --list-objects | md5sum)" = "$snap"
run repair --profile "$P" --yes --json
expect_rc 0 "(c) repair --yes"
check "(c) repair --yes removed the three" bash -c 'jq -e "[.strays[] | select(.removed)] | length == 3" <<<"$1" >/dev/null' _ "$OUT"
check "(c) repair --yes left the certificate that is not p11enroll's" test "$(ptool --list-objects | grep -c 'label: *someone-else')" = 1
ptool --delete-object --type cert --label someone-else >/dev/null
check "(c) invariants after repair" invariants
run status --profile "$P"
expect_no_err "unreadable" "(c) status after repair: nothing unreadable"
check "(c) status after repair: no unreadable line" bash -c '! grep -q "^unreadable" <<<"$1"' _ "$OUT"
# (c') half a pair labelled like p11enroll's whose private key is gone (a
# torn write the journal no longer knows about): status reports it, repair
# --yes removes it, and leaves the same half pair under another label alone.
cur=$(key_id "$L")
ptool --write-object "$T/stray.der" --type cert --label "$L" --id 0badc0de >/dev/null
ptool --write-object "$T/stray.der" --type cert --label "someone-else" --id 0badc0de >/dev/null
run status --profile "$P"
expect_out "its private key is gone" "(c') status reports the certificate whose private key is gone"
run repair --profile "$P"
expect_err "would remove: certificate" "(c') repair shows the certificate it would remove"
run repair --profile "$P" --yes
expect_rc 0 "(c') repair --yes"
expect_err "removed: certificate on token edge (it has p11enroll's label but its private key is gone)" \
  "(c') repair --yes removed it"
check "(c') the current pair is untouched" test "$(key_id "$L")" = "$cur"
check "(c') the one under another label stays" test "$(ptool --list-objects | grep -ci 'ID: *0badc0de')" = 1
ptool --delete-object --type cert --label someone-else >/dev/null
check "(c') invariants after repair" invariants
run repair --profile "$P" --bogus
expect_rc 2 "(c) repair with an unknown option"
run repair
expect_rc 2 "(c) repair without --profile"

# (d) a first enroll killed inside its key generation, the private key's
# object torn: the next enroll cleans the half pair its journal names.
TOK=half
new_token half 1234
cp "$P" "$T/h.ini"
ini_set "$T/h.ini" token uri "pkcs11:token=half"
ini_set "$T/h.ini" ca account-key "pkcs11:token=half;object=acme-account"
ini_set "$T/h.ini" output state-dir "$T/hstate"
mkdir -p "$T/hstate"
before=$(objfiles)
P11ENROLL_FAULT=enroll-keygen "$P11ENROLL_FAULTS" enroll --profile "$T/h.ini" >/dev/null 2>&1 </dev/null
check "(d) the key generation is journalled" test -s "$T/hstate/keygen.journal"
jid=$(cut -d' ' -f1 "$T/hstate/keygen.journal")
new=$(comm -13 <(echo "$before") <(objfiles))
# shellcheck disable=SC2086 # object file names are UUIDs
f=$(priv_file "$jid" $new)
check "(d) found the new private key's object file" test -n "$f" -a "$(wc -l <<<"$f")" = 1
tear "$f" zero
run enroll --profile "$T/h.ini"
expect_rc 0 "(d) enroll after a key generation killed and torn"
expect_err "of a key generation an earlier run did not finish" "(d) enroll says it cleaned the half pair"
check "(d) nothing with the journalled id is left" test "$(ptool --list-objects | grep -ci "ID: *$jid")" = 0
check "(d) the journal is gone" test ! -e "$T/hstate/keygen.journal"
TOK=edge

# (e) temp files a killed atomic write left: the next run (holding the
# lock) removes the regular files named .p11enroll-tmp.* in the output and
# state folders, and nothing else.
touch -d '-1 min' "$T/o/.p11enroll-tmp.AbC123" "$T/state/.p11enroll-tmp.dEf456" "$T/o/keep.me"
mkdir -p "$T/o/.p11enroll-tmp.dir"
run renew --profile "$P"
expect_rc 3 "(e) renew with temp files left: not due"
expect_err "removed 1 temp file(s) an interrupted run left in $T/o" "(e) says what it removed"
check "(e) the temp files are gone" test ! -e "$T/o/.p11enroll-tmp.AbC123" -a ! -e "$T/state/.p11enroll-tmp.dEf456"
check "(e) other files and a directory stay" test -e "$T/o/keep.me" -a -d "$T/o/.p11enroll-tmp.dir"
rm -rf "$T/o/keep.me" "$T/o/.p11enroll-tmp.dir"

# Finding 9: a [key] label longer than 255 bytes is retired under its whole
# name (the label was cut to 255 bytes in the result before).
LONG=$(printf 'l%.0s' $(seq 1 300))
cp "$P" "$T/long.ini"
ini_set "$T/long.ini" key label "$LONG"
ini_set "$T/long.ini" token uri "pkcs11:token=half"
ini_set "$T/long.ini" ca account-key "pkcs11:token=half;object=acme-account"
ini_set "$T/long.ini" output state-dir "$T/lstate"
ini_set "$T/long.ini" output cert "$T/lo/cert.pem"
ini_set "$T/long.ini" output chain "$T/lo/chain.pem"
ini_set "$T/long.ini" output fullchain "$T/lo/fullchain.pem"
mkdir -p "$T/lstate" "$T/lo"
run renew --profile "$T/long.ini"
expect_rc 0 "a 300-byte key label: first renew"
run renew --profile "$T/long.ini" --force --json
expect_rc 0 "a 300-byte key label: renew --force"
check "a 300-byte key label: retired under its whole name" bash -c 'jq -e --arg l "$2" ".retired | startswith(\$l + \".retired.\")" <<<"$1" >/dev/null' _ "$OUT" "$LONG"

# renew_kills N WHAT [atomic]: N cycles of `renew --force` killed after a
# random delay (rand_delay) and run again unkilled; the invariants after
# each.  With "atomic" (a token that writes each object whole) the token's
# objects are checked as the kill left them too (the pending pair allowed).
# Prints where the kills left the journal, to show they spread over the run,
# and counts (HALF_PAIRS) the kills that left half of the pending pair.
HALF_PAIRS=0
renew_kills() {
  local n=$1 what=$2 atomic=${3:-} i d why bad=0 step
  local -A steps=()
  for i in $(seq 1 "$n"); do
    d=$(rand_delay)
    killed "$d" renew --profile "$P" --force --no-wait
    step=$(jq -r '.txn.step // "none"' "$T/state/renew.json" 2>/dev/null) || step=unreadable
    jq -c . "$T/state/renew.json" >"$T/kstate" 2>/dev/null || :
    steps[$step]=$(( ${steps[$step]:-0} + 1 ))
    # Killed inside C_GenerateKeyPair with one half of the pair stored.
    [ "$step" != keygen ] || [ "$(ptool --list-objects | grep -ciE "ID: *$(pending_id)\$")" != 1 ] ||
      HALF_PAIRS=$((HALF_PAIRS + 1))
    why=""
    if [ -n "$atomic" ] && ! why=$(ptool --list-objects | python3 "$T/inv.py" "$L" "$T/state/renew.json" 1); then
      cycle_failed "$what cycle $i (killed after ${d}s, journal at $step): as killed: $why"; bad=1; break
    fi
    heal_token_files
    run renew --profile "$P" --no-wait
    why=""
    [ "$RC" = 0 ] || [ "$RC" = 3 ] || why="rerun exit $RC: $(tail -2 "$T/err")"
    [ -n "$why" ] || why=$(inv_or_repair "$P") || true
    [ -n "$why" ] || [ "$(account_sha)" = "$ACCT" ] || why="the account key changed"
    [ -n "$why" ] || [ -z "$(stray_tmp)" ] || why="temp files left: $(stray_tmp)"
    [ -z "$why" ] || {
      cycle_failed "$what cycle $i (killed after ${d}s, journal at $step): $why"
      echo "# the state after the kill: $(cat "$T/kstate" 2>/dev/null)"
      bad=1; break
    }
  done
  echo "# $what: the kills left the journal at: $(for step in "${!steps[@]}"; do printf '%s %s, ' "$step" "${steps[$step]}"; done)"
  check "$what: renew killed at random $n times: every rerun restores the invariants" test "$bad" = 0
}

# enroll_kills N MAX-DELAY NEW-TOKEN WHAT: N times, NEW-TOKEN I makes an
# empty token $TOK and the profile $E for it; a first enroll is killed after
# a random delay (0..MAX-DELAY s): the next enroll must succeed on it.
E=$T/e.ini
enroll_kills() {
  local n=$1 maxd=$2 newtok=$3 what=$4 i d why bad=0 inkeygen=0 finished=0
  for i in $(seq 1 "$n"); do
    "$newtok" "$i" || { why="cannot make token $i"; cycle_failed "$what: $why"; bad=1; break; }
    rm -rf "$T/o" "$T/state"; mkdir -p "$T/o" "$T/state"
    d=$(python3 -c "import random; print('%.3f' % random.uniform(0, $maxd))")
    killed "$d" enroll --profile "$E"
    [ ! -s "$T/state/keygen.journal" ] || inkeygen=$((inkeygen + 1))
    [ ! -e "$T/o/cert.pem" ] || finished=$((finished + 1))
    heal_token_files
    run enroll --profile "$E"
    why=""
    if [ "$RC" != 0 ]; then
      why="enroll after the kill: exit $RC: $(tail -2 "$T/err")"
    else
      why=$(inv_or_repair "$E") || true
    fi
    [ -n "$why" ] || [ -z "$(stray_tmp)" ] || why="temp files left: $(stray_tmp)"
    [ -z "$why" ] || { cycle_failed "$what enroll cycle $i (killed after ${d}s): $why"; bad=1; break; }
  done
  echo "# $what: enroll kills that left a key generation journalled: $inkeygen; that came after the files: $finished"
  check "$what: first enroll killed at random $n times: the next enroll succeeds" test "$bad" = 0
}

# soft_token I: SoftHSM token en<I> and its profile $E.
soft_token() {
  TOK=en$1
  new_token "$TOK" 1234
  keep_token_files
  cp "$P" "$E"
  ini_set "$E" token uri "pkcs11:token=$TOK"
  ini_set "$E" ca account-key "pkcs11:token=$TOK;object=acme-account"
}

keep_token_files
# Kills drawn over one run's length: time an unkilled renew --force first (a
# renewal against the local Pebble takes a fraction of a second, so a fixed
# 1.5 s bound left most kills before or after the run).
if [ -z "${CRASH_MAX_DELAY:-}" ]; then
  t0=$(date +%s.%N)
  run renew --profile "$P" --force --no-wait
  t1=$(date +%s.%N)
  expect_rc 0 "SoftHSM: an unkilled renew --force, timed"
  MAXD=$(python3 -c "print('%.3f' % max(0.2, 1.2 * ($t1 - $t0)))")
  echo "# SoftHSM: renew --force took $(python3 -c "print('%.3f' % ($t1 - $t0))") s; kills drawn in 0..${MAXD} s"
fi
renew_kills "$CYCLES" SoftHSM
# The same for the first enroll, timed on a fresh token (a fixed 0.6 s bound
# left every kill after the enroll had finished).
EMAXD=${CRASH_ENROLL_MAX_DELAY:-}
if [ -z "$EMAXD" ] && [ "$ENROLL_CYCLES" -gt 0 ]; then
  soft_token 0
  rm -rf "$T/o" "$T/state"; mkdir -p "$T/o" "$T/state"
  t0=$EPOCHREALTIME
  run enroll --profile "$E"
  t1=$EPOCHREALTIME
  expect_rc 0 "SoftHSM: an unkilled first enroll, timed"
  EMAXD=$(python3 -c "print('%.3f' % max(0.05, 1.2 * ($t1 - $t0)))")
  echo "# SoftHSM: a first enroll took $(python3 -c "print('%.3f' % ($t1 - $t0))") s; kills drawn in 0..${EMAXD} s"
fi
enroll_kills "$ENROLL_CYCLES" "${EMAXD:-0.6}" soft_token SoftHSM
echo "# objects a kill left that only 'repair --yes' could remove: $REPAIRED time(s)"
echo "# SoftHSM token.object emptied by a kill inside C_Login (restored from a copy): $TOKEN_TORN time(s)"

# The same random kills on the TPM token (CRASH_TPM_CYCLES=N for a soak,
# CRASH_TPM=no to leave the TPM out of a SoftHSM soak).
# shellcheck source=crash_tpm.sh
[ "${CRASH_TPM:-yes}" = no ] || source "$(dirname "$0")/crash_tpm.sh"

finish
