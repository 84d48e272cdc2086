#!/usr/bin/env bash
# Issue 11: `p11enroll enroll` against a CA that misbehaves on purpose
# (tests/support/hostile_ca.py), one scenario per finding and a few more.
# Each case asserts the exit code, a bound on the time, no [output] file,
# the token unchanged, and neither the PIN nor a control byte in the output.
# The "good" scenario runs first: it proves the server works (so the other
# failures are meaningful) and creates the account key the others reuse.
#
# Run by hand: P11ENROLL=build/p11enroll SRCDIR=$PWD bash tests/integration/hostile_ca.sh
# HOSTILE_ONLY="expired bad-chain" runs only those scenarios (after good).
source "$(dirname "$0")/lib.sh"

PIN=80417263
new_token edge "$PIN"
PY=${PYTHON:-python3}

# The overall deadline: `[ca] timeout` when this p11enroll knows the key
# (issue 11, finding 4), else the documented default of 120 s.  A run must
# end within twice the deadline (and at least 30 s).
seed_profile "$T/probe.ini" edge edge-hostile ec:p256
ini_set "$T/probe.ini" ca timeout 15
if "$P11ENROLL" plan --profile "$T/probe.ini" >/dev/null 2>&1; then
  TIMEOUT=15 DELAY=4
else
  TIMEOUT='' DELAY=${HOSTILE_DELAY:-13}   # 20 badNonce retries x 13 s > 2 x 120 s
fi
BOUND=$(( ${TIMEOUT:-120} * 2 ))
echo "# deadline ${TIMEOUT:-120 (default)} s, bound $BOUND s, slow-badnonce delay $DELAY s"

start_hostile() { # SCENARIO: a server for this scenario; sets HPORT, HDIR
  HDIR="$T/ca-$1"
  "$PY" "$SRCDIR/tests/support/hostile_ca.py" --dir "$HDIR" --scenario "$1" --delay "$DELAY" \
    >"$HDIR.log" 2>&1 &
  local pid=$!
  at_exit "kill $pid"
  for _ in $(seq 1 100); do [ -s "$HDIR/port" ] && break; sleep 0.1; done
  HPORT=$(cat "$HDIR/port" 2>/dev/null) || { cat "$HDIR.log"; echo "cannot start hostile_ca"; exit 1; }
}
profile_for() { # SCENARIO: $T/SCENARIO.ini with fresh output and state folders
  local f="$T/$1.ini" d="$T/run-$1"
  seed_profile "$f" edge edge-hostile ec:p256
  printf '%s\n' "$PIN" >"$T/pin"; chmod 600 "$T/pin"
  mkdir -p "$d/o" "$d/state"
  ini_set "$f" output cert "$d/o/cert.pem"
  ini_set "$f" output chain "$d/o/chain.pem"
  ini_set "$f" output fullchain "$d/o/fullchain.pem"
  ini_set "$f" output state-dir "$d/state"
  ini_set "$f" ca directory "https://127.0.0.1:$HPORT/dir"
  ini_set "$f" ca ca-bundle "$HDIR/tls.pem"
  ini_set "$f" ca account-key "pkcs11:token=edge;object=acme-account"
  ini_set "$f" ca challenge http-01
  ini_set "$f" ca http-listen "127.0.0.1:$(free_port)"
  [ -z "$TIMEOUT" ] || ini_set "$f" ca timeout "$TIMEOUT"
}
token_state() { # what must not change: every object's class, label, ID, and the keys view
  pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin "$PIN" --list-objects 2>/dev/null \
    | grep -E 'Object;|label:|ID:' | sort
  "$P11ENROLL" keys --token pkcs11:token=edge --module "$SOFTHSM_MODULE" --pin-file "$T/pin" --json 2>/dev/null
}
clean_output() { # no PIN, no control byte but \n and \t, in stdout and stderr
  ! grep -qaF -- "$PIN" "$T/out" "$T/err" &&
    ! tr -d '\n\t' <"$T/out" | LC_ALL=C grep -qa '[[:cntrl:]]' &&
    ! tr -d '\n\t' <"$T/err" | LC_ALL=C grep -qa '[[:cntrl:]]'
}
FAILS=()
hostile() { # SCENARIO: the common assertions for a CA fault
  local sc=$1 s e before
  start_hostile "$sc"
  profile_for "$sc"
  before=$(token_state)
  s=$(date +%s)
  run enroll --profile "$T/$sc.ini"
  e=$(date +%s)
  cp "$T/err" "$T/err-$sc"
  local f0=$FAILED
  expect_rc 1 "$sc: a CA fault"
  check "$sc: ends within $BOUND s ($((e - s)) s)" test $((e - s)) -le "$BOUND"
  check "$sc: no [output] file written" test -z "$(ls -A "$T/run-$sc/o")"
  check "$sc: the token is unchanged" test "$(token_state)" = "$before"
  check "$sc: no PIN and no control byte in stdout or stderr" clean_output
  [ "$FAILED" -eq "$f0" ] || FAILS+=("$sc (exit $RC, $((e - s)) s): $(tail -n 2 "$T/err" | tr '\n' '|' | cat -v | cut -c1-300)")
}

# -- good: the server works, p11enroll installs what it issues -----------------
start_hostile good
profile_for good
run enroll --profile "$T/good.ini"
expect_rc 0 "good: enrollment succeeds"
check "good: the leaf is written and verifies against the hostile root" \
  openssl verify -CAfile "$HDIR/root.pem" "$T/run-good/o/cert.pem"
check "good: no PIN and no control byte in the output" clean_output

scenarios=(expired not-yet-valid ca-leaf no-serverauth esc-names bad-chain foreign-url
  huge-retry-after problem-with-escapes order-invalid wrong-content-type huge-body
  bad-nonce-forever slow-badnonce)
for sc in ${HOSTILE_ONLY:-${scenarios[@]}}; do
  if [ "$sc" = slow-badnonce ] && [ -z "$TIMEOUT" ]; then
    # Without a run deadline (issue 11, finding 4: [ca] timeout) this scenario takes
    # 20 x 13 s, over the whole script's budget of about 4 minutes.
    echo "ok - slow-badnonce # SKIP this p11enroll has no [ca] timeout (run deadline) yet"
    continue
  fi
  hostile "$sc"
done

# A foreign origin is accepted when the profile lists it in [ca] allow-origins (finding 7).
if [[ " ${HOSTILE_ONLY:-${scenarios[*]}} " == *" foreign-url "* ]]; then
  rm -rf "$T/ca-foreign-url"   # a fresh server: not the first one's port and certificate
  start_hostile foreign-url
  profile_for foreign-url
  ini_set "$T/foreign-url.ini" ca allow-origins "https://127.0.0.2:$HPORT"
  run enroll --profile "$T/foreign-url.ini"
  expect_rc 0 "foreign-url: with [ca] allow-origins naming it, the enrollment succeeds"
  check "foreign-url: allowed: no control byte in the output" clean_output
fi

# The problem document's detail is shown, cleaned (the type too).
if [[ " ${HOSTILE_ONLY:-${scenarios[*]}} " == *" problem-with-escapes "* ]]; then
  run enroll --profile "$T/problem-with-escapes.ini"
  expect_err "names for you" "problem-with-escapes: the detail is shown"
fi

# One deadline for the whole run (finding 4): exit 1 (above), one line naming it.
if [ -n "$TIMEOUT" ] && [ -e "$T/err-slow-badnonce" ]; then
  # shellcheck disable=SC2016 # expanded by the inner bash
  check "slow-badnonce: one line naming the deadline" bash -c \
    '[ "$(grep -c deadline "$1")" -eq 1 ] && grep -q "deadline passed (\[ca\] timeout = $2 s)" "$1"' _ "$T/err-slow-badnonce" "$TIMEOUT"
fi

if [ ${#FAILS[@]} -gt 0 ]; then
  echo "# scenarios that failed, with the end of what p11enroll printed:"
  printf '#   %s\n' "${FAILS[@]}"
fi
finish
