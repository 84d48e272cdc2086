# acme_proto.sh - the ACME client (src/acme/, jws.c, http.c) against a real
# Pebble on 127.0.0.1, driven by tests/acme_driver (software account key and
# CSR: a protocol harness; the product path signs on the token).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${ACME_DRIVER:?set by meson}"

if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null; then
    echo "1..0 # SKIP pebble not installed"
    exit 77
fi

NAMES=(webcon.contoso.com sip.contoso.com sip.fabrikam.com contoso.com)

# start_ca DIR ARGS...: a Pebble stopped when the test exits; sources its env.
start_ca() {
    local dir=$1; shift
    "$SRCDIR/scripts/pebble-ca" start "$T/$dir" "$@" >/dev/null || { echo "cannot start pebble"; exit 1; }
    at_exit "'$SRCDIR/scripts/pebble-ca' stop '$T/$dir'"
    set -a  # exported: the dns hooks read CHALLTESTSRV
    # shellcheck disable=SC1090
    . "$T/$dir/pebble.env"
    set +a
}

# drive STATE ARGS...: run the driver with its own state directory.
drive() {
    local st=$T/$1; shift
    mkdir -p "$st"
    runsh env ACME_DRIVER_VERBOSE=1 "$ACME_DRIVER" --directory "$PEBBLE_DIRECTORY" \
        --ca-bundle "$PEBBLE_CA_BUNDLE" --account-key "$st/account.pem" --state-dir "$st" \
        --out "$st/chain.pem" "$@"
}

verifies() { openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$PEBBLE_INTERMEDIATE" "$1" >/dev/null 2>&1; }

# Hooks: a working one (challtestsrv set-txt/clear-txt), one that publishes
# nothing, one that fails, and one that kills the client after "add".
cat > "$T/hook-ok" <<'EOF'
#!/bin/sh
echo "$1 $2 $3" >> "$HOOK_LOG"
[ -n "${P11ENROLL_PIN:-}" ] && echo "PIN LEAKED" >> "$HOOK_LOG"
case "$1" in
add) exec curl -sf --noproxy '*' -d "{\"host\":\"$2.\",\"value\":\"$3\"}" "$CHALLTESTSRV/set-txt" ;;
remove) exec curl -sf --noproxy '*' -d "{\"host\":\"$2.\"}" "$CHALLTESTSRV/clear-txt" ;;
esac
exit 9
EOF
cat > "$T/hook-silent" <<'EOF'
#!/bin/sh
echo "$1 $2 $3" >> "$HOOK_LOG"
EOF
cat > "$T/hook-fail" <<'EOF'
#!/bin/sh
echo "$1 $2 $3" >> "$HOOK_LOG"
[ "$1" = add ] && exit 3
exit 0
EOF
cat > "$T/hook-kill" <<'EOF'
#!/bin/sh
echo "$1 $2 $3" >> "$HOOK_LOG"
kill -9 "$PPID"
EOF
chmod +x "$T"/hook-*
export HOOK_LOG=$T/hook.log

start_ca ca --validity 7200

# --- http-01 with the built-in responder, the seed's Edge names ------------
drive st1 --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" --contact mailto:pki@contoso.com "${NAMES[@]}"
expect_rc 0 "http-01: issued"
expect_err "account: created https://127.0.0.1:" "http-01: account created"
expect_err "order: created https://127.0.0.1:" "http-01: order created"
for n in "${NAMES[@]}"; do expect_err "authorization $n: valid (http-01)" "http-01: $n validated"; done
expect_err "finalize: sending the CSR" "http-01: finalize progress"
expect_err "download: certificate chain" "http-01: download progress"
expect_err "make_csr called 1 time(s)" "http-01: one CSR"
expect_out "names=webcon.contoso.com,sip.contoso.com,sip.fabrikam.com,contoso.com" "http-01: leaf key and SANs checked"
check "http-01: chain verifies against Pebble's root and intermediate" verifies "$T/st1/chain.pem"
check "http-01: account URL kept" grep -q '^https://127.0.0.1:.*/my-account/' "$T/st1/account-url"
check "http-01: account state is private" test "$(stat -c %a "$T/st1/account-url")" = 600
check "http-01: order state forgotten after success" test ! -e "$T/st1/order-url"
life=$(( $(date -d "$(openssl x509 -in "$T/st1/chain.pem" -noout -enddate | cut -d= -f2)" +%s) -
         $(date -d "$(openssl x509 -in "$T/st1/chain.pem" -noout -startdate | cut -d= -f2)" +%s) ))
check "certificateValidityPeriod honoured (lifetime ${life}s)" test "$life" -le 7201
check "http-01: responder served only expected tokens" grep -q "0 refused" "$T/err"
expect_err "requests over 1 connection" "http-01: one connection for the whole run"

# --- the same account again: no registration request ------------------------
drive st1 --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
expect_rc 0 "saved account: issued"
expect_err "account: https://127.0.0.1:" "saved account: reused from state"
expect_no_err "account: created" "saved account: not registered again"

# --- a saved account the server does not know is registered again -----------
mkdir -p "$T/st1b" && cp "$T/st1/account.pem" "$T/st1b/" && \
    echo "${PEBBLE_DIRECTORY%/dir}/my-account/0000dead" > "$T/st1b/account-url"
drive st1b --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
expect_rc 0 "unknown saved account: issued"
expect_err "no longer knows" "unknown saved account: re-registered"
expect_err "account: found https://127.0.0.1:" "unknown saved account: found by key"

# --- state from another server (the profile's directory changed) is ignored -
mkdir -p "$T/st1c" && cp "$T/st1/account.pem" "$T/st1c/" && \
    echo "https://127.0.0.2:1/my-account/1" > "$T/st1c/account-url" && \
    echo "https://127.0.0.2:1/my-order/1" > "$T/st1c/order-url"
drive st1c --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
expect_rc 0 "state of another server: issued"
expect_err "account: found https://127.0.0.1:" "state of another server: account looked up by key"
expect_err "order: created" "state of another server: new order"

# --- RSA account key (RS256) and RSA certificate key ------------------------
drive st2 --account-rsa --cert-rsa --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" "${NAMES[@]}"
expect_rc 0 "RS256 account, RSA leaf: issued"
check "RS256 account, RSA leaf: chain verifies" verifies "$T/st2/chain.pem"

# --- the account key on a SoftHSM token: token_signer(), jws_signer_from_signer() -
if [ -n "$SOFTHSM_MODULE" ]; then
    new_token acme 1234
    for t in ec:p256 ec:p384 rsa:2048; do
        l="acct-${t/:/-}"
        P11ENROLL_PIN=1234 drive "st-tok-$l" --token "pkcs11:token=acme" --module "$SOFTHSM_MODULE" \
            --account-label "$l" --account-type "$t" --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" \
            "${NAMES[@]}"
        expect_rc 0 "token account key $t: issued"
        expect_err "account key $l on the token (generated" "token account key $t: generated on first use"
        check "token account key $t: chain verifies" verifies "$T/st-tok-$l/chain.pem"
    done
    # Second run: the same token key is found, the saved account is used.
    P11ENROLL_PIN=1234 drive "st-tok-acct-ec-p256" --token "pkcs11:token=acme" --module "$SOFTHSM_MODULE" \
        --account-label acct-ec-p256 --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
    expect_rc 0 "token account key: second run issued"
    expect_err "account key acct-ec-p256 on the token (found, ES256)" "token account key: found again"
    expect_no_err "account: created" "token account key: no new account"
    # The same key from a fresh state directory: onlyReturnExisting finds the account.
    P11ENROLL_PIN=1234 drive "st-tok-again" --token "pkcs11:token=acme" --module "$SOFTHSM_MODULE" \
        --account-label acct-ec-p256 --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
    expect_rc 0 "token account key, no saved URL: issued"
    expect_err "account: found https://127.0.0.1:" "token account key: existing account found by key"
else
    echo "ok - token account key # SKIP SoftHSM not installed"
fi

# --- dns-01 through the hook, with a wildcard -------------------------------
: > "$HOOK_LOG"
drive st3 --challenge dns-01 --dns-hook "$T/hook-ok" "*.contoso.com" contoso.com sip.fabrikam.com
expect_rc 0 "dns-01: issued"
expect_err "authorization *.contoso.com: valid (dns-01)" "dns-01: wildcard validated"
check "dns-01: chain verifies" verifies "$T/st3/chain.pem"
check "dns-01: add ran for each name" test "$(grep -c '^add _acme-challenge\.' "$HOOK_LOG")" -eq 3
check "dns-01: remove ran for each name" test "$(grep -c '^remove _acme-challenge\.' "$HOOK_LOG")" -eq 3
check "dns-01: wildcard record at the base name" grep -q '^add _acme-challenge.contoso.com [A-Za-z0-9_-]\{43\}$' "$HOOK_LOG"

# --- a challenge that fails validation --------------------------------------
: > "$HOOK_LOG"
drive st4 --challenge dns-01 --dns-hook "$T/hook-silent" sip.contoso.com
expect_rc 1 "failed validation"
expect_err "authorization sip.contoso.com is invalid: dns-01: acme:error:" "failed validation: problem shown with its type"
check "failed validation: remove still ran" grep -q '^remove _acme-challenge.sip.contoso.com' "$HOOK_LOG"
check "failed validation: no chain written" test ! -e "$T/st4/chain.pem"

drive st4b --http-listen "127.0.0.1:$(( PEBBLE_HTTP_PORT == 65535 ? 65534 : PEBBLE_HTTP_PORT + 1 ))" sip.contoso.com
expect_rc 1 "http-01 on the wrong port fails validation"
expect_err "is invalid: http-01: acme:error:" "http-01 failure shows the problem"

# --- a hook that fails --------------------------------------------------------
: > "$HOOK_LOG"
drive st5 --challenge dns-01 --dns-hook "$T/hook-fail" sip.contoso.com
expect_rc 1 "failing hook"
expect_err "exit status 3" "failing hook: exit status reported"
check "failing hook: remove still ran" grep -q '^remove ' "$HOOK_LOG"

# --- a hook that hangs is stopped at the run's deadline ---------------------
cat > "$T/hook-hang" <<'EOF'
#!/bin/sh
echo "$1 $2 $3" >> "$HOOK_LOG"
[ "$1" = add ] && exec sleep 30
exit 0
EOF
chmod +x "$T/hook-hang"
: > "$HOOK_LOG"
start=$(date +%s%N)
drive st5b --timeout 2 --challenge dns-01 --dns-hook "$T/hook-hang" sip.contoso.com
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_rc 1 "hanging hook"
expect_err "killed after" "hanging hook: killed"
check "hanging hook: stopped within the deadline (${ms} ms)" test "$ms" -lt 5000
check "hanging hook: remove still ran" grep -q '^remove ' "$HOOK_LOG"

# --- [ca] dns-wait: the propagation wait is not counted in the run's deadline --
: > "$HOOK_LOG"
start=$(date +%s%N)
drive st5c --timeout 2 --dns-wait 3 --challenge dns-01 --dns-hook "$T/hook-ok" sip.contoso.com
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_rc 0 "dns-wait 3 s within a 2 s deadline: issued"
expect_err "dns-01: waiting 3 s for the records to propagate" "dns-wait: the wait is announced"
check "dns-wait: the run waited (${ms} ms)" test "$ms" -ge 3000
check "dns-wait: remove ran after it" grep -q '^remove ' "$HOOK_LOG"

# --- interrupted after the order was created: the rerun resumes it ----------
: > "$HOOK_LOG"
drive st6 --challenge dns-01 --dns-hook "$T/hook-kill" sip.contoso.com contoso.com
check "interrupted run was killed (rc $RC)" test "$RC" -eq 137
check "interrupted run left the order URL" test -s "$T/st6/order-url"
order=$(cat "$T/st6/order-url")
P11ENROLL_PIN=1234 drive st6 --challenge dns-01 --dns-hook "$T/hook-ok" sip.contoso.com contoso.com
expect_rc 0 "resumed run: issued"
check "the hook does not see P11ENROLL_PIN" bash -c '! grep -q "PIN LEAKED" "$1"' _ "$HOOK_LOG"
expect_err "order: resuming $order (pending)" "resumed run continues the same order"
expect_no_err "order: created" "resumed run opens no new order"

# --- a saved order for other names is not reused ----------------------------
mkdir -p "$T/st7" && cp "$T/st6/account.pem" "$T/st6/account-url" "$T/st7/" && echo "$order" > "$T/st7/order-url"
drive st7 --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" webcon.contoso.com
expect_rc 0 "stale order: issued"
expect_err "is for other names; starting a new one" "stale order: not reused"
expect_err "order: created" "stale order: a new one was created"

# --- webroot mode, served by a throwaway static server ----------------------
if command -v python3 >/dev/null && python3 -c 'import http.server' 2>/dev/null; then
    mkdir -p "$T/www"
    python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$PEBBLE_HTTP_PORT" >/dev/null 2>&1 &
    web=$!
    at_exit "kill $web 2>/dev/null"
    for _ in $(seq 50); do curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$PEBBLE_HTTP_PORT/" && break; sleep 0.1; done
    drive st8 --webroot "$T/www" sip.fabrikam.com
    expect_rc 0 "webroot: issued"
    check "webroot: challenge files removed" test -z "$(ls -A "$T/www/.well-known/acme-challenge")"
    kill "$web" 2>/dev/null; wait "$web" 2>/dev/null
else
    echo "ok - webroot # SKIP python3 not available"
fi

# --- transport failures --------------------------------------------------------
closed=$(( (RANDOM % 1000) + 1 ))    # a privileged port nobody listens on here
start=$(date +%s%N)
runsh "$ACME_DRIVER" --directory "https://127.0.0.1:$closed/dir" --ca-bundle "$PEBBLE_CA_BUNDLE" \
    --http-listen 127.0.0.1:0 sip.contoso.com
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_rc 1 "CA unreachable"
expect_err "GET https://127.0.0.1:$closed/dir: " "CA unreachable: names the URL"
check "CA unreachable: fails fast (${ms} ms)" test "$ms" -lt 3000

runsh "$ACME_DRIVER" --directory "$PEBBLE_DIRECTORY" --ca-bundle "$PEBBLE_ROOT" sip.contoso.com
expect_rc 1 "wrong ca-bundle"
expect_err "TLS error" "wrong ca-bundle: TLS error"

# The environment never picks the trust anchors.
runsh env CURL_CA_BUNDLE="$PEBBLE_CA_BUNDLE" SSL_CERT_FILE="$PEBBLE_CA_BUNDLE" \
    SSL_CERT_DIR="$T/ca" "$ACME_DRIVER" --directory "$PEBBLE_DIRECTORY" --ca-bundle "$PEBBLE_ROOT" sip.contoso.com
expect_rc 1 "CURL_CA_BUNDLE/SSL_CERT_FILE do not override ca-bundle"
expect_err "TLS error" "env override: still a TLS error"

runsh "$ACME_DRIVER" --directory "$PEBBLE_DIRECTORY" --ca-bundle "$T/missing.pem" sip.contoso.com
expect_rc 1 "missing ca-bundle"

# Oversized and malformed directories from a TLS server we control.
mkdir -p "$T/srv"
head -c 2000000 /dev/zero | tr '\0' ' ' > "$T/srv/big.json"
echo '{"newNonce": "https://127.0.0.1/n", ' > "$T/srv/bad.json"
echo '{"newNonce": "http://evil/n", "newAccount": "https://x/a", "newOrder": "https://x/o"}' > "$T/srv/http.json"
srvport=$(( (RANDOM % 20000) + 40000 ))
(cd "$T/srv" && exec openssl s_server -quiet -WWW -accept "127.0.0.1:$srvport" \
    -cert "$T/ca/listener.pem" -key "$T/ca/listener.key" >/dev/null 2>&1) &
srv=$!
at_exit "kill $srv 2>/dev/null"
for _ in $(seq 50); do curl -s --noproxy '*' --cacert "$PEBBLE_CA_BUNDLE" -o /dev/null "https://127.0.0.1:$srvport/http.json" && break; sleep 0.1; done
runsh "$ACME_DRIVER" --directory "https://127.0.0.1:$srvport/big.json" --ca-bundle "$PEBBLE_CA_BUNDLE" sip.contoso.com
expect_rc 1 "oversized response"
expect_err "response larger than" "oversized response: capped"
runsh "$ACME_DRIVER" --directory "https://127.0.0.1:$srvport/bad.json" --ca-bundle "$PEBBLE_CA_BUNDLE" sip.contoso.com
expect_rc 1 "malformed directory"
expect_err "ACME directory: not JSON" "malformed directory: reported"
runsh "$ACME_DRIVER" --directory "https://127.0.0.1:$srvport/http.json" --ca-bundle "$PEBBLE_CA_BUNDLE" sip.contoso.com
expect_rc 1 "directory pointing at plain http"
expect_err "is not an acceptable URL" "plain http URL refused"
kill "$srv" 2>/dev/null

# --- badNonce storm: PEBBLE_WFE_NONCEREJECT=50 --------------------------------
start_ca ca-nonce --nonce-reject 50
drive st9 --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" "${NAMES[@]}"
expect_rc 0 "NONCEREJECT=50: issued"
expect_err "badNonce from the server, retrying" "NONCEREJECT=50: badNonce was retried"
check "NONCEREJECT=50: chain verifies" verifies "$T/st9/chain.pem"

# --- External Account Binding required ----------------------------------------
hmac=zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W
start_ca ca-eab --eab "kid-1:$hmac"
printf '%s\n' "$hmac" > "$T/eab.key"
printf '%s\n' "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH" > "$T/eab-wrong.key"
drive st10 --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
expect_rc 2 "EAB required but not configured"
expect_err "requires External Account Binding" "EAB required: says what is missing"
drive st11 --eab-kid kid-1 --eab-hmac-file "$T/eab-wrong.key" --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
expect_rc 1 "EAB with a wrong HMAC"
expect_err "account registration: acme:error:" "EAB wrong HMAC: problem shown"
check "EAB wrong HMAC: no account URL saved" test ! -e "$T/st11/account-url"
drive st12 --eab-kid kid-1 --eab-hmac-file "$T/eab.key" --http-listen "127.0.0.1:$PEBBLE_HTTP_PORT" sip.contoso.com
expect_rc 0 "EAB with the right HMAC: issued"
expect_err "account: created" "EAB right HMAC: account created"

finish
