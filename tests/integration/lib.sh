# lib.sh - shared helpers for integration tests (sourced, bash).
# Each test runs the real binary ($P11ENROLL) against real SoftHSM tokens in
# a private temporary directory that is removed on exit.
set -u
: "${P11ENROLL:?set by meson}" "${SRCDIR:?set by meson}"
T=$(mktemp -d /tmp/p11e-it.XXXXXX)
export SOFTHSM2_CONF="$T/softhsm2.conf"
unset P11ENROLL_PIN
PASSED=0 FAILED=0 CLEANUPS=()
cleanup() {
  local c
  for c in "${CLEANUPS[@]}"; do eval "$c" || true; done
  rm -rf "$T"
}
trap cleanup EXIT
at_exit() { CLEANUPS+=("$1"); }

# new_token LABEL [PIN]: a fresh SoftHSM token in this test's directory.
new_token() {
  "$SRCDIR/scripts/softhsm-token" --dir "$T" --label "$1" --pin "${2:-1234}" >/dev/null
}
SOFTHSM_MODULE=$(for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do [ -f "$m" ] && echo "$m" && break; done)

# run ARGS...: runs p11enroll; sets RC, OUT, ERR.
run() {
  "$P11ENROLL" "$@" >"$T/out" 2>"$T/err" </dev/null
  RC=$?
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
}
# runsh CMD...: runs any command; sets RC, OUT, ERR.
runsh() {
  "$@" >"$T/out" 2>"$T/err" </dev/null
  RC=$?
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
}

ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() {
  FAILED=$((FAILED + 1))
  echo "not ok - $1"
  echo "  rc=$RC"; echo "  stdout: ${OUT:0:2000}"; echo "  stderr: ${ERR:0:2000}"
}
# check NAME CONDITION...: records a result from a shell test.
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
expect_rc() { check "$2 (exit $1)" test "$RC" -eq "$1"; }
expect_err() { check "$2 (stderr has '$1')" grep -qF -- "$1" "$T/err"; }
expect_out() { check "$2 (stdout has '$1')" grep -qF -- "$1" "$T/out"; }
expect_no_err() { check "$2 (stderr lacks '$1')" bash -c '! grep -qF -- "$1" "$2"' _ "$1" "$T/err"; }

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
