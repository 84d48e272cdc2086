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

# ini_set FILE SECTION KEY VALUE: set (or add) KEY in [SECTION]; VALUE "-" deletes.
ini_set() {
  local f=$1 sec=$2 key=$3 val=$4
  awk -v sec="[$sec]" -v key="$key" -v val="$val" '
    function emit() { if (val != "-") print key " = " val; done = 1 }
    /^\[/ { if (insec && !done) emit(); insec = ($0 == sec) }
    insec && $0 ~ "^" key "[ \t]*=" { if (!done) emit(); next }
    { print }
    END { if (insec && !done) emit(); if (!seen && !done && val != "-") { print sec; print key " = " val } }
    $0 == sec { seen = 1 }' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
}

# seed_profile OUT TOKEN-LABEL KEY-LABEL KEY-TYPE: the seed's Edge profile
# pointed at this test's token, PIN file and output directory.
seed_profile() {
  local out=$1 tok=$2 label=$3 type=$4
  cp "$SRCDIR/tests/profiles/seed-edge.ini" "$out"
  printf '1234\n' >"$T/pin"; chmod 600 "$T/pin"
  mkdir -p "$T/o" "$T/state"
  ini_set "$out" token uri "pkcs11:token=$tok"
  ini_set "$out" token module "$SOFTHSM_MODULE"
  ini_set "$out" token pin-file "$T/pin"
  ini_set "$out" key label "$label"
  ini_set "$out" key type "$type"
  ini_set "$out" output cert "$T/o/cert.pem"
  ini_set "$out" output chain "$T/o/chain.pem"
  ini_set "$out" output fullchain "$T/o/fullchain.pem"
  ini_set "$out" output state-dir "$T/state"
  ini_set "$out" hooks deploy -
}

# A local OpenSSL CA for tests: make_ca DIR NAME; issue_cert DIR CSR OUT [EXTFILE]
make_ca() {
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$2" -keyout "$1/ca.key" -out "$1/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >/dev/null 2>&1
}
issue_cert() {
  if [ -n "${4:-}" ]; then
    openssl x509 -req -in "$2" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 10 \
      -extfile "$4" -out "$3" 2>/dev/null
  else
    openssl x509 -req -in "$2" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 10 \
      -copy_extensions copyall -out "$3" 2>/dev/null
  fi
}
# ari_cert_id CERT: the CertID of RFC 9773 §4.1 for CERT (PEM):
# base64url(AKI keyIdentifier) "." base64url(serial octets).
ari_cert_id() {
  local aki ser
  b64u() { xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '='; }
  aki=$(openssl x509 -in "$1" -noout -ext authorityKeyIdentifier | grep -oE '([0-9A-F]{2}:){19}[0-9A-F]{2}' | head -1 | tr -d ':')
  ser=$(openssl x509 -in "$1" -noout -serial | cut -d= -f2)
  [ $(( ${#ser} % 2 )) -eq 1 ] && ser="0$ser"
  case $ser in [89A-F]*) ser="00$ser" ;; esac
  echo "$(b64u <<<"$aki").$(b64u <<<"$ser")"
}
# peak_kib ARGS...: runs p11enroll; sets RC, OUT, ERR and KIB (peak RSS, KiB).
peak_kib() {
  runsh /usr/bin/time -f %M -o "$T/time" "$P11ENROLL" "$@"
  KIB=$(tail -1 "$T/time")
}
free_port() {
  local p
  while :; do
    p=$(( (RANDOM << 15 | RANDOM) % 20000 + 30000 ))
    ss -Htan "( sport = :$p )" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}
