#!/usr/bin/env bash
# Issue 6: renew and status against a real SoftHSM token and a real Pebble
# issuing 120-second certificates.  Due and not due, key rotation under a
# stable label, retired pairs destroyed after retire-after, a kill at every
# fault point then a rerun (token invariants checked with pkcs11-tool), a
# kill in the middle of the ACME order, the lock, a CA failure, an
# unwritable output dir, and a token that refuses to change labels.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${P11ENROLL_FAULTS:?set by meson (build/tests/p11enroll-faults)}"
: "${LABEL_LOCK_MODULE:=}"

if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null; then
  echo "1..0 # SKIP pebble not installed"
  exit 77
fi

L=edge-external
EMPTY_SHA=$(sha256sum </dev/null)
new_token edge 1234
# No authorization reuse: the mid-order kill needs the dns-01 hook to run.
"$SRCDIR/scripts/pebble-ca" start "$T/ca" --validity 120 --authz-reuse 0 >/dev/null || { echo "cannot start pebble"; exit 1; }
at_exit "'$SRCDIR/scripts/pebble-ca' stop '$T/ca'"
set -a; . "$T/ca/pebble.env"; set +a

P=$T/p.ini
seed_profile "$P" edge "$L" ec:p256
ini_set "$P" ca directory "$PEBBLE_DIRECTORY"
ini_set "$P" ca ca-bundle "$PEBBLE_CA_BUNDLE"
ini_set "$P" ca http-listen "127.0.0.1:$PEBBLE_HTTP_PORT"
ini_set "$P" renewal jitter -
ini_set "$P" renewal retire-after 1h
ini_set "$P" hooks deploy "echo \"\$P11ENROLL_KEY_URI\" >> '$T/hook.log'"
: >"$T/hook.log"

ptool() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label edge --login --pin 1234 "$@" 2>/dev/null; }
hooks() { wc -l <"$T/hook.log" | tr -d ' '; }
renew() { run renew --profile "$P" "$@"; }
frenew() { # frenew FAULT ARGS...: the fault-armed binary
  local f=$1; shift
  P11ENROLL_FAULT=$f "$P11ENROLL_FAULTS" renew --profile "$P" "$@" >"$T/out" 2>"$T/err" </dev/null
  RC=$?; OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
# id of the private key labelled $1 (empty when none)
key_id() { ptool --list-objects --type privkey | awk -v l="$1" '/^Private Key Object/{p=1} p && $1=="label:" {lab=$2} p && $1=="ID:" { if (lab==l) print $2; p=0 }'; }

# invariants [pending-ok]: exactly one current pair labelled L with its
# certificate, which is its key's and the [output] file's; every other
# object belongs to a complete pair that is the ACME account, a retired
# pair the state records, or (with pending-ok) the journal's one pending pair.
cat >"$T/inv.py" <<'EOF'
import json, re, sys
label, state_path, pending_ok = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
objs, cur = [], None
for line in sys.stdin:
    m = re.match(r"^(Private Key|Public Key|Certificate) Object", line)
    if m:
        cur = {"class": m.group(1), "label": None, "id": None}; objs.append(cur); continue
    m = re.match(r"^\s+(label|ID):\s+(.*)$", line)
    if m and cur is not None:
        cur["label" if m.group(1) == "label" else "id"] = m.group(2).strip()
try:
    st = json.load(open(state_path))
except FileNotFoundError:
    st = {}
retired = {r["id"]: r["label"] for r in st.get("retired", [])}
txn = st.get("txn") or {}
groups = {}
for o in objs:
    groups.setdefault(o["id"], []).append(o)
bad, pend = [], 0
cur_ids = [o["id"] for o in objs if o["class"] == "Private Key" and o["label"] == label]
if len(cur_ids) != 1:
    bad.append("%d private keys labelled %s" % (len(cur_ids), label))
for gid, g in groups.items():
    classes = sorted(o["class"] for o in g)
    labels = set(o["label"] for o in g)
    if classes.count("Private Key") != 1 or classes.count("Public Key") != 1 or classes.count("Certificate") > 1:
        bad.append("id %s is not one complete pair: %s" % (gid, classes)); continue
    if len(labels) != 1:
        bad.append("id %s has mixed labels %s" % (gid, labels)); continue
    l = labels.pop()
    if l == "acme-account":
        continue
    if l == label:
        if "Certificate" not in classes: bad.append("the current pair has no certificate")
        continue
    if l.startswith(label + ".retired."):
        if retired.get(gid) != l: bad.append("retired pair %s (%s) not in the state" % (l, gid))
        continue
    if l.startswith(label + ".pending."):
        pend += 1
        if not pending_ok or txn.get("pending_id") != gid:
            bad.append("pending pair %s (%s) not in the journal" % (l, gid))
        continue
    bad.append("unexpected pair %s (%s)" % (l, gid))
if pend > 1: bad.append("%d pending pairs" % pend)
for r in st.get("retired", []):
    if r["id"] not in groups: bad.append("state lists retired %s that is not on the token" % r["label"])
print("; ".join(bad) if bad else "ok")
sys.exit(1 if bad else 0)
EOF
invariants() {
  local why
  why=$(ptool --list-objects | python3 "$T/inv.py" "$L" "$T/state/renew.json" "${1:-0}")
  [ "$why" = ok ] || { echo "  invariants: $why"; return 1; }
  # The current certificate is for the current key, and is the [output] file.
  ptool --read-object --type cert --label "$L" -o "$T/cur.der" >/dev/null || { echo "  no cert"; return 1; }
  ptool --read-object --type pubkey --label "$L" -o "$T/cur.pub" >/dev/null || { echo "  no pubkey"; return 1; }
  local a b c
  a=$(openssl x509 -inform DER -in "$T/cur.der" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
  b=$(openssl pkey -pubin -inform DER -in "$T/cur.pub" -outform DER | sha256sum)
  c=$(openssl x509 -in "$T/o/cert.pem" -outform DER | sha256sum)
  [ "$a" = "$b" ] && [ "$a" != "$EMPTY_SHA" ] || { echo "  the certificate is not the key's"; return 1; }
  [ "$c" = "$(sha256sum <"$T/cur.der")" ] || { echo "  [output] cert is not the token's"; return 1; }
}
snapshot() { ptool --list-objects | grep -E 'label|ID' | sort; }

# -- input errors: exit 2 before anything happens -----------------------------------
run renew
expect_rc 2 "renew without --profile"
expect_err "--profile is required" "renew without --profile says why"
cp "$P" "$T/manual.ini"; ini_set "$T/manual.ini" ca type manual
run renew --profile "$T/manual.ini"
expect_rc 2 "renew with [ca] type = manual"
expect_err "renew needs [ca] type = acme" "manual CA: says why"
run renew --profile "$P" --bogus
expect_rc 2 "renew with an unknown option"

# -- first run: no certificate -> due; the key is made and takes the label ----------
renew
expect_rc 0 "first renew: no certificate, issued"
expect_out "no-certificate" "first renew: reason"
ID1=$(key_id "$L")
check "first renew: a key labelled $L" test -n "$ID1"
check "first renew: invariants" invariants
check "first renew: hook ran once" test "$(hooks)" = 1
check "first renew: hook got the stable URI" grep -q "object=$L;type=private" "$T/hook.log"

# -- not due: exit 3, nothing changed -------------------------------------------------
before=$(snapshot); cert_before=$(sha256sum <"$T/o/cert.pem")
renew
expect_rc 3 "renew right after: not due"
expect_err "not due until" "not due: says until when"
check "not due: token unchanged" test "$(snapshot)" = "$before"
check "not due: cert file unchanged" test "$(sha256sum <"$T/o/cert.pem")" = "$cert_before"
check "not due: hook not run" test "$(hooks)" = 1
run renew --profile "$P" --json
expect_rc 3 "not due --json"
check "not due --json: renewed false" bash -c 'jq -e ".renewed == false and .due == false and .reason == \"not-due\"" <<<"$1" >/dev/null' _ "$OUT"
renew --dry-run --force
expect_rc 0 "--dry-run --force: would renew"
expect_out "would" "--dry-run says what it would do"
check "--dry-run: token unchanged" test "$(snapshot)" = "$before"

# -- status ---------------------------------------------------------------------------
run status --profile "$P" --json
expect_rc 0 "status --json"
check "status: current key id, serial, SANs, not due" bash -c '
  jq -e --arg id "$2" ".current.key_id == \$id and (.current.serial|length) > 0 and
     (.current.sans|index(\"sip.contoso.com\")) != null and .renewal.due == false and
     .pending == null" <<<"$1" >/dev/null' _ "$OUT" "$ID1"
run status --profile "$P"
expect_out "not due" "status text: renewal line"

# -- due by --force: new key, new id, the stable label names it, old pair retired ---------
renew --force
expect_rc 0 "renew --force"
ID2=$(key_id "$L")
check "--force: a new key id" test -n "$ID2" -a "$ID2" != "$ID1"
check "--force: the old pair is retired" bash -c 'ptool() { pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects 2>/dev/null; }; ptool "$1" | grep -A3 "^Private Key" | grep -q "label: *$2.retired."' _ "$SOFTHSM_MODULE" "$L"
check "--force: invariants" invariants
check "--force: hook ran once more" test "$(hooks)" = 2
a=$(GNUTLS_PIN=1234 p11tool --provider "$SOFTHSM_MODULE" --login --export-pubkey \
    "pkcs11:token=edge;object=$L;type=public" 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
b=$(openssl x509 -in "$T/o/cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
check "--force: the stable URI names the new key (p11tool)" test "$a" = "$b" -a "$a" != "$EMPTY_SHA"

# -- due by time: renew-before 119/120 of a 120 s lifetime ----------------------------------
ini_set "$P" renewal renew-before 119/120
sleep 2
renew
expect_rc 0 "due by time"
expect_out "renew-before" "due by time: reason"
ini_set "$P" renewal renew-before 1/3
check "due by time: invariants" invariants

# -- due by changed names -----------------------------------------------------------------
ini_set "$P" edge extra-sans extra.contoso.com
renew
expect_rc 0 "due by changed names"
expect_out "names" "changed names: reason"
check "changed names: the new certificate has the name" bash -c 'openssl x509 -in "$1" -noout -ext subjectAltName | grep -q extra.contoso.com' _ "$T/o/cert.pem"
check "changed names: invariants" invariants
renew
expect_rc 3 "changed names: then not due"
check "hooks so far: one per renewal" test "$(hooks)" = 4

# -- retired pairs are destroyed only after retire-after ---------------------------------------
nret() { ptool --list-objects --type privkey | grep -c "label: *$L.retired." ; }
check "three retired pairs kept (retire-after 1h)" test "$(nret)" = 3
ini_set "$P" renewal retire-after 4s
renew --force --json
expect_rc 0 "renew with retire-after 4s"
newest=$(jq -r .retired <<<"$OUT")
check "retire-after 4s: the pair retired just now ($newest) is kept" bash -c '
  pkcs11-tool --module "$1" --token-label edge --login --pin 1234 --list-objects --type privkey 2>/dev/null |
  grep -q "label: *$2\$"' _ "$SOFTHSM_MODULE" "$newest"
sleep 4
renew
expect_rc 3 "after retire-after: not due (exit 3)"
expect_err "destroyed the retired key pair" "after retire-after: says what it destroyed"
check "after retire-after: no retired pairs left" test "$(nret)" = 0
check "after retire-after: invariants" invariants
check "after retire-after: the state lists none" bash -c 'jq -e ".retired == []" "$1" >/dev/null' _ "$T/state/renew.json"
ini_set "$P" renewal retire-after 1h

# -- a kill at every fault point, then a rerun ------------------------------------------------------
for f in keygen generated order installed switch switch-half switched deploy deployed; do
  idb=$(key_id "$L"); h0=$(hooks); cert0=$(sha256sum <"$T/o/cert.pem")
  frenew "$f" --force
  check "fault $f: killed there" bash -c '[ "$1" -eq 137 ] && grep -q "fault: killed at $2" "$3"' _ "$RC" "$f" "$T/err"
  npend=$(ptool --list-objects --type privkey | grep -c "label: *$L.pending.")
  check "fault $f: at most one pending pair" test "$npend" -le 1
  case $f in
    keygen|generated|order|installed|switch)
      check "fault $f: the old pair is still current" test "$(key_id "$L")" = "$idb" ;;
    switch-half)
      check "fault $f: between the relabels no pair has the label (known window)" test -z "$(key_id "$L")" ;;
    *)
      check "fault $f: the new pair is current" bash -c 'test -n "$1" -a "$1" != "$2"' _ "$(key_id "$L")" "$idb" ;;
  esac
  run status --profile "$P" --json
  check "fault $f: status shows the pending work" bash -c 'jq -e ".pending.step != null and .renewal.due == true" <<<"$1" >/dev/null' _ "$OUT"
  renew
  expect_rc 0 "fault $f: the rerun completes the renewal"
  expect_err "resuming the renewal" "fault $f: the rerun says it resumes"
  case $f in
    installed|switch|switch-half|switched|deploy|deployed)
      expect_no_err "order: created" "fault $f: no second order" ;;
  esac
  check "fault $f: invariants after the rerun" invariants
  check "fault $f: a new key is current" bash -c 'test "$1" != "$2"' _ "$(key_id "$L")" "$idb"
  check "fault $f: cert file renewed" test "$(sha256sum <"$T/o/cert.pem")" != "$cert0"
  # The hook runs once per renewal; a kill after it but before the journal
  # said so runs it again (at least once, never zero times).
  want=$((h0 + 1)); [ "$f" = deployed ] && want=$((h0 + 2))
  check "fault $f: deploy hook count $want" test "$(hooks)" = "$want"
  check "fault $f: journal cleared" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
done
check "faults: retired pairs recorded, none orphaned" invariants

# A kill while destroying a retired pair: the rerun finishes the destruction.
ini_set "$P" renewal retire-after 0
frenew destroy
check "fault destroy: killed there" grep -q "fault: killed at destroy" "$T/err"
renew
check "fault destroy: the rerun destroys the rest (exit 3, not due)" test "$RC" -eq 3
check "fault destroy: no retired pairs left" test "$(nret)" = 0
check "fault destroy: invariants" invariants
ini_set "$P" renewal retire-after 1h

# -- a kill in the middle of the ACME order (dns-01 hook kills the client) ----------------------
cat >"$T/dns-hook" <<'EOF'
#!/bin/sh
if [ "$1" = add ] && [ ! -e "$KILL_MARK" ]; then : >"$KILL_MARK"; kill -9 "$PPID"; fi
case "$1" in
add) exec curl -sf --noproxy '*' -d "{\"host\":\"$2.\",\"value\":\"$3\"}" "$CHALLTESTSRV/set-txt" ;;
remove) exec curl -sf --noproxy '*' -d "{\"host\":\"$2.\"}" "$CHALLTESTSRV/clear-txt" ;;
esac
EOF
chmod +x "$T/dns-hook"
export KILL_MARK=$T/killed
ini_set "$P" ca challenge dns-01
ini_set "$P" ca dns-hook "$T/dns-hook"
ini_set "$P" ca http-listen -
idb=$(key_id "$L")
renew --force
check "mid-order kill: the client died" test "$RC" -eq 137 -a -e "$KILL_MARK"
check "mid-order kill: the order was opened" bash -c 'grep -q "order: created" "$1" && test -s "$2"' _ "$T/err" "$T/state/acme-order.url"
check "mid-order kill: old pair still current" test "$(key_id "$L")" = "$idb"
pend=$(jq -r .txn.pending_id "$T/state/renew.json")
renew
expect_rc 0 "mid-order kill: the rerun completes"
expect_err "order: resuming" "mid-order kill: the same order is resumed"
expect_no_err "order: created" "mid-order kill: no second order"
check "mid-order kill: the journalled pending key became current" test "$(key_id "$L")" = "$pend"
check "mid-order kill: invariants" invariants
ini_set "$P" ca challenge http-01
ini_set "$P" ca dns-hook -
ini_set "$P" ca http-listen "127.0.0.1:$PEBBLE_HTTP_PORT"

# -- two runs at once -------------------------------------------------------------------------------
h0=$(hooks); idb=$(key_id "$L")
P11ENROLL_PAUSE=order P11ENROLL_PAUSE_SECS=4 "$P11ENROLL_FAULTS" renew --profile "$P" --force \
  >"$T/a.out" 2>"$T/a.err" </dev/null &
apid=$!
for _ in $(seq 1 100); do flock -n "$T/state/renew.lock" true || break; sleep 0.05; done
renew --no-wait
expect_rc 1 "concurrent --no-wait: exit 1"
expect_err "holds the lock" "concurrent --no-wait: says another run holds the lock"
renew
expect_rc 3 "concurrent: the second run waited, then found nothing due"
expect_err "waiting for another p11enroll run" "concurrent: the second run said it waits"
wait "$apid"; arc=$?
check "concurrent: the first run renewed" test "$arc" -eq 0
check "concurrent: one renewal, one hook run" test "$(hooks)" = $((h0 + 1))
check "concurrent: invariants" invariants

# -- the CA fails mid-renewal: old certificate current, exit 1; the rerun completes ---------------
idb=$(key_id "$L"); cert0=$(sha256sum <"$T/o/cert.pem"); h0=$(hooks)
ini_set "$P" ca directory "https://127.0.0.1:$(free_port)/dir"
renew --force
expect_rc 1 "CA down: exit 1"
expect_err "stay current" "CA down: says the old pair stays current"
check "CA down: the old pair is current" test "$(key_id "$L")" = "$idb"
check "CA down: cert file unchanged" test "$(sha256sum <"$T/o/cert.pem")" = "$cert0"
check "CA down: hook not run" test "$(hooks)" = "$h0"
check "CA down: invariants (one journalled pending pair)" invariants 1
pend=$(jq -r .txn.pending_id "$T/state/renew.json")
ini_set "$P" ca directory "$PEBBLE_DIRECTORY"
renew
expect_rc 0 "CA back: the rerun completes"
check "CA back: with the same pending key" test "$(key_id "$L")" = "$pend"
check "CA back: invariants" invariants

# -- an unwritable output dir: exit 1, token unchanged ------------------------------------------------
: >"$T/notadir"
ini_set "$P" output chain "$T/notadir/chain.pem"
before=$(snapshot)
renew --force
expect_rc 1 "unwritable output dir: exit 1"
expect_err "is not writable" "unwritable output dir: says which"
check "unwritable output dir: token unchanged" test "$(snapshot)" = "$before"
check "unwritable output dir: no journal entry" bash -c 'jq -e ".txn == null" "$1" >/dev/null' _ "$T/state/renew.json"
ini_set "$P" output chain "$T/o/chain.pem"

# -- rotate = no: the same key, a new certificate ---------------------------------------------------
ini_set "$P" renewal rotate no
idb=$(key_id "$L"); cert0=$(sha256sum <"$T/o/cert.pem")
renew --force
expect_rc 0 "rotate = no: renewed"
check "rotate = no: the same key" test "$(key_id "$L")" = "$idb"
check "rotate = no: a new certificate" test "$(sha256sum <"$T/o/cert.pem")" != "$cert0"
check "rotate = no: invariants" invariants
ini_set "$P" renewal rotate yes

# -- a deploy hook that fails: exit 1, the certificate installed; the next run retries the hook --
h0=$(hooks); idb=$(key_id "$L")
ini_set "$P" hooks deploy "exit 4"
renew --force
expect_rc 1 "failing hook: exit 1"
expect_err "runs the deploy hook again" "failing hook: says the next run retries it"
check "failing hook: the new pair is current" test "$(key_id "$L")" != "$idb"
ini_set "$P" hooks deploy "echo \"\$P11ENROLL_KEY_URI\" >> '$T/hook.log'"
renew
expect_rc 0 "failing hook: the rerun runs the hook"
check "failing hook: ran once when fixed" test "$(hooks)" = $((h0 + 1))
check "failing hook: invariants" invariants

# -- ACME Renewal Information: Pebble 2.4.0 has none, so a stand-in directory -------------------
# (Pebble's listener certificate) serves renewalInfo and records the CertID asked for.
cat >"$T/ari.py" <<'PYEOF'
import http.server, json, ssl, sys
port, cert, key, window, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        base = "https://127.0.0.1:%d" % port
        if self.path == "/dir":
            body = {"newNonce": base + "/n", "newAccount": base + "/a", "newOrder": base + "/o",
                    "renewalInfo": base + "/ari"}
        elif self.path.startswith("/ari/"):
            open(log, "a").write(self.path[5:] + "\n")
            s, e = window.split(",")
            body = {"suggestedWindow": {"start": s, "end": e}}
        else:
            self.send_response(404); self.end_headers(); return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "3600")
        self.end_headers(); self.wfile.write(data)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
srv = http.server.HTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PYEOF
ari_start() { # ari_start START,END
  ARIPORT=$(free_port)
  python3 "$T/ari.py" "$ARIPORT" "$T/ca/listener.pem" "$T/ca/listener.key" "$1" "$T/ari.log" &
  ARIPID=$!
  at_exit "kill $ARIPID 2>/dev/null"
  for _ in $(seq 1 50); do
    curl -sf --noproxy '*' --cacert "$PEBBLE_CA_BUNDLE" "https://127.0.0.1:$ARIPORT/dir" >/dev/null && break
    sleep 0.1
  done
  ini_set "$P" ca directory "https://127.0.0.1:$ARIPORT/dir"
}
ari_stop() { kill "$ARIPID" 2>/dev/null; wait "$ARIPID" 2>/dev/null; ini_set "$P" ca directory "$PEBBLE_DIRECTORY"; }
# The CertID of RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial octets).
b64u() { xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '='; }
aki=$(openssl x509 -in "$T/o/cert.pem" -noout -ext authorityKeyIdentifier | grep -oE '([0-9A-F]{2}:){19}[0-9A-F]{2}' | head -1 | tr -d ':')
ser=$(openssl x509 -in "$T/o/cert.pem" -noout -serial | cut -d= -f2)
[ $(( ${#ser} % 2 )) -eq 1 ] && ser="0$ser"
case $ser in [89A-F]*) ser="00$ser" ;; esac
certid="$(b64u <<<"$aki").$(b64u <<<"$ser")"
: >"$T/ari.log"
before=$(snapshot)
ari_start "2000-01-01T00:00:00Z,2000-01-02T00:00:00Z"
renew --dry-run
expect_rc 0 "ARI: a window in the past makes it due (--dry-run)"
expect_out "ari" "ARI: the reason is the CA's window"
check "ARI: the CertID asked for is RFC 9773's ($certid)" test "$(head -1 "$T/ari.log")" = "$certid"
ari_stop
ari_start "2099-01-01T00:00:00Z,2099-01-02T00:00:00Z"
renew
expect_rc 3 "ARI: a future window: not due"
expect_out "ARI" "ARI: says the time is the CA's"
check "ARI: the window is cached in the state" bash -c 'jq -e --arg c "$2" ".ari.cert_id == \$c" "$1" >/dev/null' _ "$T/state/renew.json" "$certid"
ari_stop
renew
expect_rc 3 "ARI: the cached window is used until its Retry-After"
check "ARI: token unchanged" test "$(snapshot)" = "$before"

# -- a token that refuses to change labels ------------------------------------------------------------
if [ -n "$LABEL_LOCK_MODULE" ] && [ -f "$LABEL_LOCK_MODULE" ]; then
  export LABEL_LOCK_TARGET=$SOFTHSM_MODULE
  new_token imm 1234
  Q=$T/imm.ini
  cp "$P" "$Q"
  mkdir -p "$T/imm-state" "$T/imm-o"
  ini_set "$Q" token uri "pkcs11:token=imm"
  ini_set "$Q" token module "$LABEL_LOCK_MODULE"
  ini_set "$Q" key label imm
  ini_set "$Q" ca account-key "pkcs11:token=imm;object=acme-account"
  ini_set "$Q" output state-dir "$T/imm-state"
  ini_set "$Q" output cert "$T/imm-o/cert.pem"
  ini_set "$Q" output chain -
  ini_set "$Q" output fullchain -
  ini_set "$Q" hooks deploy "echo \"\$P11ENROLL_KEY_URI\" > '$T/imm-hook'"
  run renew --profile "$Q"
  expect_rc 0 "immutable labels: first renewal"
  expect_err "refuses to change labels" "immutable labels: says so"
  c1=$(jq -r .current_id "$T/imm-state/renew.json")
  check "immutable labels: the state keeps the current id" bash -c 'jq -e ".labels_immutable == true" "$1" >/dev/null && test ${#2} = 32' _ "$T/imm-state/renew.json" "$c1"
  check "immutable labels: the hook gets a URI with the id" grep -q "id=" "$T/imm-hook"
  run renew --profile "$Q"
  expect_rc 3 "immutable labels: then not due"
  run renew --profile "$Q" --force
  expect_rc 0 "immutable labels: a second renewal"
  c2=$(jq -r .current_id "$T/imm-state/renew.json")
  check "immutable labels: a new current id, the old one retired by id" bash -c '
    test "$2" != "$3" && jq -e --arg id "$2" "[.retired[].id] == [\$id]" "$1" >/dev/null' _ "$T/imm-state/renew.json" "$c1" "$c2"
  run status --profile "$Q" --json
  check "immutable labels: status finds the current key by id" bash -c 'jq -e --arg id "$2" ".current.key_id == \$id and .labels_immutable" <<<"$1" >/dev/null' _ "$OUT" "$c2"
  a=$(GNUTLS_PIN=1234 p11tool --provider "$SOFTHSM_MODULE" --login --export-pubkey \
      "pkcs11:token=imm;id=$(sed 's/../%&/g' <<<"$c2");type=public" 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
  b=$(openssl x509 -in "$T/imm-o/cert.pem" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
  check "immutable labels: the certificate is the current key's (by id)" test "$a" = "$b" -a "$a" != "$EMPTY_SHA"
fi

finish
