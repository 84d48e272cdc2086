# rotate_lib.sh - token and file invariants after a renewal, shared by
# renew.sh and crash.sh.  The caller defines T, L, EMPTY_SHA and ptool()
# (pkcs11-tool logged in to the profile's token), and the profile writes
# its [output] files to $T/o and its state to $T/state.
# pebble_profile PROFILE PEBBLE-ARGS...: start a Pebble in $T/ca (stopped at
# exit) and write the seed's Edge profile for token "edge", key $L, ec:p256,
# pointed at it (no jitter).
pebble_profile() {
  local p=$1; shift
  "$SRCDIR/scripts/pebble-ca" start "$T/ca" "$@" >/dev/null || { echo "cannot start pebble"; exit 1; }
  at_exit "'$SRCDIR/scripts/pebble-ca' stop '$T/ca'"
  set -a; . "$T/ca/pebble.env"; set +a
  seed_profile "$p" edge "$L" ec:p256
  ini_set "$p" ca directory "$PEBBLE_DIRECTORY"
  ini_set "$p" ca ca-bundle "$PEBBLE_CA_BUNDLE"
  ini_set "$p" ca http-listen "127.0.0.1:$PEBBLE_HTTP_PORT"
  ini_set "$p" renewal jitter -
}

# invariants [pending-ok]: exactly one current pair labelled L with its
# certificate, which is its key's and the [output] file's; every other
# object belongs to a complete pair that is the ACME account, a retired
# pair the state records, or (with pending-ok) the journal's one pending pair
# or what is left of the retired pair whose destruction the state journals.
# On a token that refuses label changes (the state says labels_immutable)
# the current pair is the one whose CKA_ID the state records (current_id),
# under whatever label it was made with: one private key, one public key
# and one certificate with that id; a pair still labelled L is then the
# old one, which the state must list as retired.
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
imm = st.get("current_id") if st.get("labels_immutable") else None
if imm:
    cur_ids = [o["id"] for o in objs if o["class"] == "Private Key" and o["id"] == imm]
    if len(cur_ids) != 1:
        bad.append("%d private keys with the current id %s" % (len(cur_ids), imm))
else:
    cur_ids = [o["id"] for o in objs if o["class"] == "Private Key" and o["label"] == label]
    if len(cur_ids) != 1:
        bad.append("%d private keys labelled %s" % (len(cur_ids), label))
# As killed (pending-ok), a retired pair whose destruction the state journals
# (destroying_id) may be partly or wholly gone: the next run finishes it.
destroying = st.get("destroying_id") if pending_ok else None
for gid, g in groups.items():
    if gid == destroying:
        continue
    # As killed inside C_GenerateKeyPair: part of the journalled pending pair
    # (tpm2-pkcs11 stores the public key and the private key one at a time).
    if pending_ok and txn.get("step") == "keygen" and gid == txn.get("pending_id"):
        continue
    classes = sorted(o["class"] for o in g)
    labels = set(o["label"] for o in g)
    if classes.count("Private Key") != 1 or classes.count("Public Key") != 1 or classes.count("Certificate") > 1:
        bad.append("id %s is not one complete pair: %s" % (gid, classes)); continue
    if len(labels) != 1:
        bad.append("id %s has mixed labels %s" % (gid, labels)); continue
    l = labels.pop()
    if l == "acme-account":
        continue
    if imm and gid == imm:
        if "Certificate" not in classes: bad.append("the current pair has no certificate")
        continue
    if imm and gid in retired:
        if retired[gid] != l: bad.append("retired pair %s (%s) is %s in the state" % (l, gid, retired[gid]))
        continue
    if l == label and not imm:
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
# Exactly one private key, one public key and ONE certificate carry the stable
# label (with immutable labels: the current id, checked per id above).
for cls in ("Private Key", "Public Key", "Certificate") if not imm else ():
    n = sum(1 for o in objs if o["class"] == cls and o["label"] == label)
    if n != 1: bad.append("%d %s objects labelled %s" % (n, cls.lower(), label))
for r in st.get("retired", []):
    if r["id"] not in groups and r["id"] != destroying: bad.append("state lists retired %s that is not on the token" % r["label"])
print("; ".join(bad) if bad else "ok")
sys.exit(1 if bad else 0)
EOF
invariants() {
  local why
  why=$(ptool --list-objects | python3 "$T/inv.py" "$L" "$T/state/renew.json" "${1:-0}")
  [ "$why" = ok ] || { echo "  invariants: $why"; return 1; }
  # The current certificate is for the current key, and is the [output] file.
  local -a cur=(--label "$L")
  local cid
  cid=$(jq -r 'select(.labels_immutable) | .current_id // empty' "$T/state/renew.json" 2>/dev/null)
  [ -z "$cid" ] || cur=(--id "$cid")
  ptool --read-object --type cert "${cur[@]}" -o "$T/cur.der" >/dev/null || { echo "  no cert"; return 1; }
  ptool --read-object --type pubkey "${cur[@]}" -o "$T/cur.pub" >/dev/null || { echo "  no pubkey"; return 1; }
  local a b c d
  a=$(openssl x509 -inform DER -in "$T/cur.der" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
  b=$(openssl pkey -pubin -inform DER -in "$T/cur.pub" -outform DER | sha256sum)
  c=$(openssl x509 -in "$T/o/cert.pem" -outform DER | sha256sum)
  d=$(openssl x509 -in "$T/o/cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
  [ "$a" = "$b" ] && [ "$a" != "$EMPTY_SHA" ] || { echo "  the certificate is not the key's"; return 1; }
  [ "$c" = "$(sha256sum <"$T/cur.der")" ] || { echo "  [output] cert is not the token's"; return 1; }
  [ "$d" = "$b" ] || { echo "  [output] cert's public key is not the current key (${cur[*]})"; return 1; }
  # chain.pem issued cert.pem; fullchain.pem is the two.
  openssl verify -partial_chain -CAfile "$T/o/chain.pem" "$T/o/cert.pem" >/dev/null 2>&1 ||
    { echo "  [output] chain does not issue [output] cert"; return 1; }
  cat "$T/o/cert.pem" "$T/o/chain.pem" | cmp -s - "$T/o/fullchain.pem" ||
    { echo "  [output] fullchain is not cert + chain"; return 1; }
}
