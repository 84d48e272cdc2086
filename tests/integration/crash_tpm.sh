# crash_tpm.sh - the random kills of crash.sh on a TPM 2.0 token: tpm2-pkcs11
# on swtpm through tpm2-abrmd (scripts/tpm-token), sourced by crash.sh after
# its SoftHSM cycles (it uses crash.sh's renew_kills, enroll_kills and the
# Pebble profile $P).  tpm2-pkcs11 refuses label changes (label-immutable in
# tokens/tpm2-pkcs11.conf): renew keeps each new pair under its
# <L>.pending.<time> label and the state records the current pair's CKA_ID,
# so the invariants (rotate_lib.sh) are stated by that id: one private key,
# one public key and one certificate with it, matching each other and the
# [output] files; every other pair the account key, a retired pair the state
# lists, or the journal's one pending pair; the account key unchanged.
# CRASH_TPM_CYCLES=N renew kills (default 16), CRASH_TPM_ENROLL_CYCLES=N
# first-enroll kills (default N/5); the delays are drawn up to a little more
# than an unkilled run takes on this machine.
TPM_CYCLES=${CRASH_TPM_CYCLES:-16}
TPM_ENROLL_CYCLES=${CRASH_TPM_ENROLL_CYCLES:-$(( (TPM_CYCLES + 4) / 5 ))}

# tpm_start LABEL [FIXTURE-OPTION]: a new swtpm with one tpm2-pkcs11 token
# LABEL, stopped at exit.
tpm_start() {
  "$SRCDIR/scripts/tpm-token" --label "$1" --pin 1234 ${2:+"$2"} >"$T/tpm.env" 2>"$T/tpm.err" || return 1
  # shellcheck disable=SC1091
  . "$T/tpm.env"
  TPM_DIRS+=("$P11E_TOKEN_DIR")
  at_exit "'$SRCDIR/scripts/tpm-token' --stop '$P11E_TOKEN_DIR'"
}
TPM_DIRS=()
# tpm_profile OUT TOKEN: $P pointed at the TPM token TOKEN.
tpm_profile() {
  cp "$P" "$1"
  ini_set "$1" token module "$P11E_TPM_MODULE"
  ini_set "$1" token uri "pkcs11:token=$2"
  ini_set "$1" ca account-key "pkcs11:token=$2;object=acme-account"
}
# tpm_token I: a fresh TPM token en<I> and the profile $E for it (the
# previous cycle's TPM is stopped: one swtpm at a time).
tpm_stop_all() {
  local d
  for d in "${TPM_DIRS[@]}"; do "$SRCDIR/scripts/tpm-token" --stop "$d"; done
  TPM_DIRS=()
}
tpm_token() {
  tpm_stop_all
  TOK=en$1
  tpm_start "$TOK" && tpm_profile "$E" "$TOK"
}
# since T0: seconds (3 decimals) from $EPOCHREALTIME T0 to now.
since() { python3 -c "print('%.3f' % ($EPOCHREALTIME - $1))"; }
if ! command -v swtpm >/dev/null || ! command -v tpm2_ptool >/dev/null; then
  echo "# SKIP the TPM cycles: swtpm or tpm2_ptool not installed (scripts/install-deps)"
elif ! tpm_start tpm; then
  not_ok "tpm: the fixture starts: $(head -3 "$T/tpm.err")"
else
  TOK=tpm PMOD=$P11E_TPM_MODULE
  TP=$T/tpm.ini
  tpm_profile "$TP" tpm
  rm -rf "$T/o" "$T/state"; mkdir -p "$T/o" "$T/state"
  P=$TP
  t0=$EPOCHREALTIME
  run enroll --profile "$P"
  ENROLL_S=$(since "$t0")
  expect_rc 0 "tpm: first enroll (${ENROLL_S}s)"
  check "tpm: invariants after enroll" invariants
  ACCT=$(account_sha)
  check "tpm: the account key is on the token" test -n "$ACCT" -a "$ACCT" != "$EMPTY_SHA"
  t0=$EPOCHREALTIME
  run renew --profile "$P" --force --no-wait
  RENEW_S=$(since "$t0")
  expect_rc 0 "tpm: renew --force (${RENEW_S}s)"
  check "tpm: the state tracks the current pair by id" \
    jq -e '.labels_immutable and (.current_id | type == "string")' "$T/state/renew.json" >/dev/null
  check "tpm: invariants after renew --force" invariants
  MAXD=$(python3 -c "print('%.3f' % (1.5 * $RENEW_S))")
  HALF_PAIRS=0
  renew_kills "$TPM_CYCLES" "tpm (0..${MAXD}s)" atomic
  echo "# tpm: kills inside C_GenerateKeyPair that left half of the pending pair (cleaned by the next run): $HALF_PAIRS"
  enroll_kills "$TPM_ENROLL_CYCLES" "$(python3 -c "print('%.3f' % (1.5 * $ENROLL_S))")" tpm_token tpm
  tpm_stop_all
fi

# Without a resource manager (swtpm's TCTI, as /dev/tpm0) a run killed with
# keys loaded leaves them in the TPM: the next run fails at C_Login and must
# say how to free them; after tpm2_flushcontext -t and -l (the objects and
# the sessions) it works again.  (keygen loads one key: enroll needs a
# resource manager on swtpm's 3 object slots.)
loaded() { TPM2TOOLS_TCTI=$TPM2_PKCS11_TCTI tpm2_getcap handles-transient 2>/dev/null | grep -c 0x; }
if ! command -v swtpm >/dev/null || ! command -v tpm2_ptool >/dev/null; then
  :
elif ! tpm_start norm --no-rm; then
  not_ok "tpm without a resource manager: the fixture starts: $(head -3 "$T/tpm.err")"
else
  K=(--module "$P11E_TPM_MODULE" --token pkcs11:token=norm --type ec:p256)
  t0=$EPOCHREALTIME
  P11ENROLL_PIN=1234 run keygen "${K[@]}" --label k0
  expect_rc 0 "tpm without a resource manager: keygen"
  MAXD=$(python3 -c "print('%.3f' % (1.5 * $(since "$t0")))")
  # Kill at random until kills have left two objects loaded (of swtpm's three
  # slots: then the next keygen cannot load its key; one left may still let it
  # through).  On a busy machine 40 kills have all missed that window.
  for i in $(seq 1 200); do
    P11ENROLL_PIN=1234 killed "$(rand_delay)" keygen "${K[@]}" --label "k$i"
    [ "$(loaded)" -lt 2 ] || break
  done
  echo "# tpm without a resource manager: $i kills, $(loaded) objects left loaded"
  check "tpm without a resource manager: killed keygens left keys loaded ($(loaded))" test "$(loaded)" -ge 1
  P11ENROLL_PIN=1234 run keygen "${K[@]}" --label after-kill
  expect_rc 1 "tpm without a resource manager: the next run fails"
  expect_err "without a resource manager, run tpm2_flushcontext -t and tpm2_flushcontext -l" "tpm without a resource manager: and says how to free the TPM"
  TPM2TOOLS_TCTI=$TPM2_PKCS11_TCTI tpm2_flushcontext --transient-object >/dev/null 2>&1
  TPM2TOOLS_TCTI=$TPM2_PKCS11_TCTI tpm2_flushcontext --loaded-session >/dev/null 2>&1
  P11ENROLL_PIN=1234 run keygen "${K[@]}" --label after-flush
  expect_rc 0 "tpm without a resource manager: after tpm2_flushcontext -t and -l keygen works again"
fi
