#!/usr/bin/env bash
# Issue 10: the whole path on real tokens other than SoftHSM -- a TPM 2.0
# (swtpm + tpm2-pkcs11), NSS softokn, and a SoftHSM token exported by
# `p11-kit server` (the stand-in for a network HSM).  Each token is started
# by its scripts/*-token fixture; Pebble by scripts/pebble-ca.
#
# Per token: tokens --json; keygen of every type the token offers, verified
# non-extractable by p11enroll and by try_extract; keys --json; csr
# --new-key verified by openssl; import of a certificate from a local CA;
# enroll over ACME; renew --force with rotation; status.
#
# Registered in tests/meson.build (integration); by hand:
#   P11ENROLL=$PWD/build/p11enroll SRCDIR=$PWD TRY_EXTRACT=$PWD/build/tests/try_extract \
#     bash tests/integration/tokens.sh [tpm] [nss] [remote]
source "$(dirname "$0")/lib.sh"
: "${TRY_EXTRACT:?set by meson}"
export P11ENROLL_PIN=1234 TSS2_LOG=all+NONE
REAL_P11ENROLL=$P11ENROLL
WHICH=${*:-slots tpm nss remote}
SEED_SANS='DNS:webcon.contoso.com, DNS:sip.contoso.com, DNS:sip.fabrikam.com, DNS:contoso.com'
chmod 755 "$T"

"$SRCDIR/scripts/pebble-ca" start "$T/ca" --validity 3600 --authz-reuse 0 >"$T/ca.log" 2>&1 ||
  { cat "$T/ca.log"; echo "cannot start pebble"; exit 1; }
at_exit "'$SRCDIR/scripts/pebble-ca' stop '$T/ca'"
# shellcheck disable=SC1091
. "$T/ca/pebble.env"
make_ca "$T/localca" "p11e test CA"
chmod -R a+rX "$T/ca" "$T/localca"

# profile OUT NAME TOKEN-URI MODULE KEY-LABEL TYPE: the seed's Edge profile on
# this token, writing under $T/NAME (MODULE "-": no module, p11-kit's list).
profile() {
  local out=$1 d=$T/$2 uri=$3 mod=$4 label=$5 type=$6
  cp "$SRCDIR/tests/profiles/seed-edge.ini" "$out"
  ini_set "$out" token uri "$uri"
  ini_set "$out" token module "$mod"
  ini_set "$out" token pin-file "$d/pin"
  ini_set "$out" key label "$label"
  ini_set "$out" key type "$type"
  ini_set "$out" output cert "$d/o/cert.pem"
  ini_set "$out" output chain "$d/o/chain.pem"
  ini_set "$out" output fullchain "$d/o/fullchain.pem"
  ini_set "$out" output state-dir "$d/state"
  ini_set "$out" hooks deploy -
  ini_set "$out" ca directory "$PEBBLE_DIRECTORY"
  ini_set "$out" ca ca-bundle "$PEBBLE_CA_BUNDLE"
  ini_set "$out" ca account-key "$uri;object=acme-account"
  ini_set "$out" ca challenge http-01
  ini_set "$out" ca http-listen "127.0.0.1:$PEBBLE_HTTP_PORT"
  ini_set "$out" renewal jitter 0
}

# whole_path NAME TOKEN-LABEL URI MODULE EXTRACT-MODULE: every step on one token.
# MODULE "-" means the module comes from p11-kit's registered list (NSS).
whole_path() {
  local name=$1 tlabel=$2 uri=$3 mod=$4 xmod=$5 d=$T/$1 types t l p
  local p0=$PASSED f0=$FAILED
  local -a modarg=()
  [ "$mod" = - ] || modarg=(--module "$mod")
  mkdir -p "$d/o" "$d/state"
  printf '1234\n' >"$d/pin"; chmod 600 "$d/pin"
  [ -z "$RUNAS" ] || chown -R "$RUNAS_IDS" "$d"

  run tokens "${modarg[@]}" --json
  expect_rc 0 "$name: tokens --json"
  types=$(jq -r --arg l "$tlabel" '.tokens[] | select(.label==$l) | .keygen[]' "$T/out" 2>/dev/null | tr '\n' ' ')
  check "$name: tokens lists the token with key types ($types)" test -n "$types"
  check "$name: no %00 in the token URI" bash -c '! grep -q "%00" "$1"' _ "$T/out"
  expect_no_err "ERROR" "$name: no module chatter on stderr"

  for t in $types; do
    l="k-${t/:/-}"
    run keygen "${modarg[@]}" --token "$uri" --label "$l" --type "$t" --json
    expect_rc 0 "$name: keygen $t"
    check "$name: keygen $t: protection read back" bash -c \
      'jq -e ".flags.sensitive and (.flags.extractable|not) and (.extra_usages|type==\"array\")" "$1" >/dev/null' _ "$T/out"
    $RUNAS "${nss_x:-$TRY_EXTRACT}" "$xmod" "$tlabel" 1234 "$l" >"$T/x" 2>&1; xrc=$?
    if [ "$WRAP_LEAKS" = yes ]; then
      # NSS 3.87 quirk (tokens/nss-softokn.conf): C_WrapKey ignores
      # CKA_EXTRACTABLE.  Assert it still does, and that the user was told.
      check "$name: keygen $t: C_WrapKey exports it (known quirk) and keygen warns" bash -c \
        '[ "$1" -eq 1 ] && grep -q "LEAK: wrapped" "$2" && ! grep -q "attribute 0x" "$2" && grep -q "exports private keys through C_WrapKey" "$3"' _ "$xrc" "$T/x" "$T/err"
    else
      check "$name: keygen $t: reading or wrapping the private key fails" \
        bash -c '[ "$1" -eq 0 ] && grep -q "stayed on the token" "$2"' _ "$xrc" "$T/x"
    fi
  done
  run keygen "${modarg[@]}" --token "$uri" --label k-ed --type ed25519
  case " $types " in
    *" ed25519 "*) expect_rc 0 "$name: keygen ed25519" ;;
    *) expect_rc 1 "$name: ed25519 refused up front"
       expect_err "cannot generate ed25519" "$name: ed25519 refusal message" ;;
  esac

  run keys "${modarg[@]}" --token "$uri" --json
  expect_rc 0 "$name: keys --json"
  check "$name: every key sensitive and never extractable" bash -c \
    'jq -e "(.keys|length)>0 and all(.keys[]; .sensitive and .always_sensitive and .never_extractable and (.extractable|not))" "$1" >/dev/null' _ "$T/out"

  # -- csr --new-key, then import of a certificate from a local CA -------------
  p=$d/edge.ini
  profile "$p" "$name" "$uri" "$mod" edge-csr ec:p256
  run csr --profile "$p" --new-key --out "$d/edge.csr"
  expect_rc 0 "$name: csr --new-key"
  runsh openssl req -in "$d/edge.csr" -noout -verify
  check "$name: csr: openssl req -verify accepts it" grep -q 'verify OK' "$T/err"
  san=$(openssl req -in "$d/edge.csr" -noout -text 2>/dev/null | grep -A1 'Subject Alternative Name' | tail -1 | sed 's/^ *//')
  check "$name: csr: SANs in plan order" test "$san" = "$SEED_SANS"
  issue_cert "$T/localca" "$d/edge.csr" "$d/issued.pem"
  chmod a+r "$d/issued.pem"
  run import "${modarg[@]}" --token "$uri" --cert "$d/issued.pem" --chain "$T/localca/ca.pem" --profile "$p" --json
  expect_rc 0 "$name: import"
  check "$name: import wrote the certificate" cmp -s "$d/o/cert.pem" "$d/issued.pem"

  # -- ACME enrollment, renewal with rotation, status ---------------------------
  p=$d/acme.ini
  profile "$p" "$name" "$uri" "$mod" edge-acme ec:p256
  rm -rf "$d/o" "$d/state"; mkdir -p "$d/o" "$d/state"
  [ -z "$RUNAS" ] || chown -R "$RUNAS_IDS" "$d"
  run enroll --profile "$p" --json
  expect_rc 0 "$name: enroll over ACME"
  check "$name: the leaf verifies against Pebble's root" openssl verify -CAfile "$PEBBLE_ROOT" \
    -untrusted "$PEBBLE_INTERMEDIATE" "$d/o/cert.pem"
  run status --profile "$p" --json
  expect_rc 0 "$name: status after enroll"
  id1=$(jq -r '.current.key_id // empty' "$T/out" 2>/dev/null)
  run renew --profile "$p" --force --json
  expect_rc 0 "$name: renew --force"
  run status --profile "$p" --json
  expect_rc 0 "$name: status after renew"
  id2=$(jq -r '.current.key_id // empty' "$T/out" 2>/dev/null)
  check "$name: renew rotated the key ($id1 -> $id2)" bash -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]' _ "$id1" "$id2"
  check "$name: status shows the retired key, nothing pending" bash -c \
    'jq -e "(.retired|length)>=1 and .pending==null and .renewal.due==false" "$1" >/dev/null' _ "$T/out"
  ROWS+=("$name|$types|$((PASSED - p0))|$((FAILED - f0))")
}

# The README "Tokens" table, from what ran: package versions, the key types
# each token offered, checks passed/failed.  Written to $TOKENS_TABLE if set.
ver() { dpkg-query -W -f='${Package} ${Version}\n' "$@" 2>/dev/null | paste -sd, - | sed 's/,/, /g'; }
table() {
  local r name types np nf pk
  echo "| token | versions tested | key types | checks (passed/failed) |"
  echo "|---|---|---|---|"
  for r in "${ROWS[@]}"; do
    IFS='|' read -r name types np nf <<<"$r"
    case $name in
      tpm) pk=$(ver libtpm2-pkcs11-1 swtpm tpm2-abrmd); name="TPM 2.0: tpm2-pkcs11 on swtpm via tpm2-abrmd" ;;
      nss) pk=$(ver libnss3); name="NSS softokn (p11-kit module file)" ;;
      remote) pk=$(ver p11-kit softhsm2); name="p11-kit server + p11-kit-client.so over SoftHSM" ;;
    esac
    echo "| $name | $pk | ${types% } | $np/$nf |"
  done
}

RUNAS= RUNAS_IDS= WRAP_LEAKS=no ROWS=()
for which in $WHICH; do
  case $which in
  tpm)
    "$SRCDIR/scripts/tpm-token" --label edge --pin 1234 >"$T/tpm.env" || { FAILED=$((FAILED + 1)); echo "not ok - tpm: fixture"; continue; }
    # shellcheck disable=SC1091
    . "$T/tpm.env"
    at_exit "'$SRCDIR/scripts/tpm-token' --stop '$P11E_TOKEN_DIR'"
    whole_path tpm edge pkcs11:token=edge "$P11E_TPM_MODULE" "$P11E_TPM_MODULE"
    ;;
  nss)
    "$SRCDIR/scripts/nss-token" --pin 1234 >"$T/nss.env" || { FAILED=$((FAILED + 1)); echo "not ok - nss: fixture"; continue; }
    # shellcheck disable=SC1091
    . "$T/nss.env"
    at_exit "'$SRCDIR/scripts/nss-token' --stop '$P11E_TOKEN_DIR'"
    # softokn needs its init string: p11enroll and try_extract load it through
    # p11-kit's module list (user config), as an unprivileged user when root.
    RUNAS=$P11E_NSS_RUN
    nss_bin=$REAL_P11ENROLL nss_x=$TRY_EXTRACT
    if [ -n "$RUNAS" ]; then
      RUNAS_IDS=$(id -u nobody):$(id -g nobody)
      # The build and source trees may sit where nobody cannot read (a CI clone
      # under /root): the unprivileged user runs copies from this test's folder.
      mkdir -p "$T/nssbin"
      cp "$REAL_P11ENROLL" "$TRY_EXTRACT" "$T/nssbin/" && cp -r "$P11ENROLL_TOKENS_DIR" "$T/nssbin/tokens"
      chmod -R a+rX "$T/nssbin"
      nss_bin=$T/nssbin/$(basename "$REAL_P11ENROLL") nss_x=$T/nssbin/$(basename "$TRY_EXTRACT")
    fi
    printf '#!/bin/sh\nP11ENROLL_TOKENS_DIR=%q exec %s %q "$@"\n' \
      "${nss_bin%/*}/tokens" "$RUNAS" "$nss_bin" >"$T/nss-p11enroll"
    [ -n "$RUNAS" ] || sed -i "s|P11ENROLL_TOKENS_DIR=[^ ]* ||" "$T/nss-p11enroll"
    chmod 755 "$T/nss-p11enroll"
    P11ENROLL=$T/nss-p11enroll
    proxy=$(for m in /usr/lib/*/p11-kit-proxy.so; do [ -f "$m" ] && echo "$m" && break; done)
    WRAP_LEAKS=yes
    whole_path nss "NSS Certificate DB" 'pkcs11:token=NSS%20Certificate%20DB' - "$proxy"
    P11ENROLL=$REAL_P11ENROLL RUNAS= RUNAS_IDS= WRAP_LEAKS=no nss_x=$TRY_EXTRACT
    ;;
  remote)
    "$SRCDIR/scripts/remote-token" --label edge --pin 1234 >"$T/remote.env" || { FAILED=$((FAILED + 1)); echo "not ok - remote: fixture"; continue; }
    # shellcheck disable=SC1091
    . "$T/remote.env"
    at_exit "'$SRCDIR/scripts/remote-token' --stop '$P11E_TOKEN_DIR'"
    whole_path remote edge pkcs11:token=edge "$P11E_REMOTE_MODULE" "$P11E_REMOTE_MODULE"
    ;;
  slots)
    # 70 SoftHSM tokens (71 slots): more than the 64 a fixed array held.
    sd=$T/slots; mkdir -p "$sd"
    for i in $(seq 70); do
      "$SRCDIR/scripts/softhsm-token" --dir "$sd" --label "t$i" --pin 1234 >/dev/null
    done
    export SOFTHSM2_CONF=$sd/softhsm2.conf
    run tokens --module "$SOFTHSM_MODULE" --json
    check "slots: tokens lists all 70 tokens of 71 slots" bash -c \
      '[ "$(jq "[.tokens[] | select(.label|test(\"^t[0-9]+$\"))] | length" "$1")" -eq 70 ]' _ "$T/out"
    run keygen --module "$SOFTHSM_MODULE" --token pkcs11:token=t70 --label k70 --type ec:p256
    expect_rc 0 "slots: keygen on the 70th token"
    unset SOFTHSM2_CONF
    ;;
  *) echo "tokens.sh: unknown token $which (slots, tpm, nss, remote)" >&2; exit 2 ;;
  esac
done
table | tee "${TOKENS_TABLE:-/dev/null}"
finish
