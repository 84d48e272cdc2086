#!/usr/bin/env bash
# Issue 14: the enrolled key serving TLS from the token.  Real Debian 12
# servers on 127.0.0.1 load the key through the OpenSSL pkcs11 engine
# (libengine-pkcs11-openssl): nginx with an EC P-256 key, stunnel4 with an
# RSA key.  `enroll` then `renew --force` (rotation) against a real Pebble;
# the deploy hook reloads the server, and a client must see the new
# certificate signed by the new key behind the same stable label.
source "$(dirname "$0")/lib.sh"

ENGINE=$(for e in /usr/lib/*/engines-3/pkcs11.so /usr/lib/*/engines-3/libpkcs11.so; do [ -f "$e" ] && echo "$e" && break; done)
for need in nginx stunnel4; do
  command -v "$need" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$need" >/dev/null || { echo "not ok - $need is not installed (scripts/install-deps)"; exit 1; }
done
[ -n "$ENGINE" ] || { echo "not ok - libengine-pkcs11-openssl is not installed"; exit 1; }

new_token edge 1234
"$SRCDIR/scripts/pebble-ca" start "$T/ca" --validity 3600 >"$T/ca.log" 2>&1 || { cat "$T/ca.log"; exit 1; }
at_exit "'$SRCDIR/scripts/pebble-ca' stop '$T/ca'"
# shellcheck disable=SC1091
. "$T/ca/pebble.env"

# One PIN file for p11enroll and the engine: libp11 0.4.12 reads pin-source
# files verbatim, so it must have no trailing newline (p11enroll ignores one).
printf 1234 >"$T/engine.pin"; chmod 600 "$T/engine.pin"
# The engine section loaded by every server through OPENSSL_CONF; init = 1
# makes OpenSSL initialise it so the "engine:" key loaders find it.
cat >"$T/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $SOFTHSM_MODULE
init = 1
CNF

# server_profile NAME LABEL TYPE HOOK: an ACME profile for this Pebble with its
# own output and state directories and a deploy hook that reloads the server.
server_profile() {
  local f="$T/$1.ini"
  seed_profile "$f" edge "$2" "$3"
  mkdir -p "$T/$1/o" "$T/$1/state"
  ini_set "$f" token pin-file "$T/engine.pin"
  ini_set "$f" ca directory "$PEBBLE_DIRECTORY"
  ini_set "$f" ca ca-bundle "$PEBBLE_CA_BUNDLE"
  ini_set "$f" ca account-key "pkcs11:token=edge;object=acme-account"
  ini_set "$f" ca http-listen "127.0.0.1:$PEBBLE_HTTP_PORT"
  ini_set "$f" output cert "$T/$1/o/cert.pem"
  ini_set "$f" output chain "$T/$1/o/chain.pem"
  ini_set "$f" output fullchain "$T/$1/o/fullchain.pem"
  ini_set "$f" output state-dir "$T/$1/state"
  ini_set "$f" hooks deploy "$4"
}
# key_uri LABEL: the stable URI a server is configured with (the label moves
# to the new key at rotation; the id does not stay).
key_uri() { echo "pkcs11:token=edge;object=$1;type=private?pin-source=file:$T/engine.pin"; }
# token_spki LABEL: SPKI SHA-256 of the key now behind LABEL, from `keys --json`.
token_spki() {
  "$P11ENROLL" keys --token "pkcs11:token=edge" --module "$SOFTHSM_MODULE" \
    --pin-file "$T/engine.pin" --json 2>/dev/null | jq -r --arg l "$1" '.keys[] | select(.label==$l) | .spki_sha256'
}
# handshake PORT OUT: a verified TLS handshake (Pebble's root); the server's
# leaf certificate lands in OUT.
handshake() {
  echo | timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername sip.contoso.com \
    -CAfile "$PEBBLE_ROOT" -verify_return_error >"$T/s_client.out" 2>&1 </dev/null || return 1
  grep -q 'Verify return code: 0 (ok)' "$T/s_client.out" &&
    openssl x509 -in "$T/s_client.out" -out "$2" 2>/dev/null
}
spki_of() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
serial_of() { openssl x509 -in "$1" -noout -serial; }
# wait_served PORT SERIAL OUT: wait (10 s) until the server presents SERIAL.
wait_served() {
  local i
  for i in $(seq 1 50); do
    handshake "$1" "$3" && [ "$(serial_of "$3")" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}
wait_listen() { local i; for i in $(seq 1 50); do ss -Hltn "( sport = :$1 )" | grep -q . && return 0; sleep 0.2; done; return 1; }

# check_server NAME PORT PROFILE LABEL: enroll was done; the server presents
# the enrolled certificate whose key is the token key; then renew --force
# rotates and after the hook the server presents the new certificate and key.
check_server() {
  local name=$1 port=$2 prof=$3 label=$4 spki0 serial0
  serial0=$(serial_of "$T/$name/o/cert.pem")
  spki0=$(token_spki "$label")
  check "$name: handshake completes and shows the enrolled certificate" \
    wait_served "$port" "$serial0" "$T/$name/served0.pem"
  check "$name: the served key is the token key behind $label ($spki0)" \
    test "$(spki_of "$T/$name/served0.pem")" = "$spki0"
  run renew --profile "$prof" --force
  expect_rc 0 "$name: renew --force"
  local spki1 serial1
  spki1=$(token_spki "$label")
  serial1=$(serial_of "$T/$name/o/cert.pem")
  check "$name: renew rotated the key behind the same label" test -n "$spki1" -a "$spki1" != "$spki0"
  check "$name: after the deploy hook the server presents the new certificate" \
    wait_served "$port" "$serial1" "$T/$name/served1.pem"
  check "$name: ... signed with the new token key" test "$(spki_of "$T/$name/served1.pem")" = "$spki1"
}

export SOFTHSM2_CONF
# -- nginx, EC P-256 -----------------------------------------------------------
# Limit (libp11 0.4.12): the engine does not re-open the key in a forked worker
# ("Object handle invalid"), so nginx runs as one process: master_process off.
NPORT=$(free_port)
mkdir -p "$T/nginx/tmp"
# Limit: after a SIGHUP reload the single nginx process was not seen to
# present the new certificate (its log stops after "reconfiguring"; not
# investigated further), so the deploy hook restarts nginx (systemctl
# restart nginx on a real host).
cat >"$T/nginx/restart" <<HOOK
#!/bin/sh
pid=\$(cat $T/nginx/nginx.pid 2>/dev/null) || exit 0
kill "\$pid"
while kill -0 "\$pid" 2>/dev/null; do sleep 0.1; done
OPENSSL_CONF=$T/openssl.cnf exec nginx -c $T/nginx/nginx.conf -e $T/nginx/error.log
HOOK
chmod +x "$T/nginx/restart"
server_profile nginx edge-ec ec:p256 "$T/nginx/restart"
cat >"$T/nginx/nginx.conf" <<CONF
daemon on;
master_process off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log info;
env SOFTHSM2_CONF;
env OPENSSL_CONF;
events { worker_connections 16; }
http {
  access_log off;
  client_body_temp_path $T/nginx/tmp; proxy_temp_path $T/nginx/tmp;
  fastcgi_temp_path $T/nginx/tmp; uwsgi_temp_path $T/nginx/tmp; scgi_temp_path $T/nginx/tmp;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $T/nginx/o/fullchain.pem;
    ssl_certificate_key "engine:pkcs11:$(key_uri edge-ec)";
    location / { return 200 "served from the token\n"; }
  }
}
CONF
run enroll --profile "$T/nginx.ini"
expect_rc 0 "nginx: enroll (EC P-256)"
at_exit "[ -f '$T/nginx/nginx.pid' ] && kill \$(cat '$T/nginx/nginx.pid')"
OPENSSL_CONF="$T/openssl.cnf" runsh nginx -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log"
expect_rc 0 "nginx starts with the key from the token"
check "nginx listens" wait_listen "$NPORT"
check_server nginx "$NPORT" "$T/nginx.ini" edge-ec
[ "$FAILED" -eq 0 ] || tail -20 "$T/nginx/error.log"
check "nginx: curl gets the page over the token key" bash -c \
  'curl -sf --noproxy "*" --cacert "$1" --resolve "sip.contoso.com:$2:127.0.0.1" "https://sip.contoso.com:$2/" | grep -q "served from the token"' \
  _ "$PEBBLE_ROOT" "$NPORT"

# -- stunnel4, RSA 2048 ----------------------------------------------------------
SPORT=$(free_port)
mkdir -p "$T/stunnel"
server_profile stunnel edge-rsa rsa:2048 "sh -c '[ ! -s $T/stunnel/pid ] || kill -HUP \$(cat $T/stunnel/pid)'"
cat >"$T/stunnel/stunnel.conf" <<CONF
foreground = yes
debug = 5
engine = pkcs11
[tls]
accept = 127.0.0.1:$SPORT
engineId = pkcs11
cert = $T/stunnel/o/fullchain.pem
key = $(key_uri edge-rsa)
exec = /bin/echo
execArgs = echo served-from-the-token
CONF
run enroll --profile "$T/stunnel.ini"
expect_rc 0 "stunnel: enroll (RSA 2048)"
OPENSSL_CONF="$T/openssl.cnf" setsid stunnel4 "$T/stunnel/stunnel.conf" >"$T/stunnel/log" 2>&1 </dev/null &
echo $! >"$T/stunnel/pid"
at_exit "kill \$(cat '$T/stunnel/pid')"
check "stunnel listens" wait_listen "$SPORT"
check_server stunnel "$SPORT" "$T/stunnel.ini" edge-rsa

finish
