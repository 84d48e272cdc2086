#!/usr/bin/env python3
"""hostile_ca.py - an ACME (RFC 8555) server for tests that misbehaves on purpose.

Pebble is a well-behaved CA; this one speaks just enough ACME for p11enroll's
client to reach the point of one scenario, and then does the one wrong thing
the scenario names (issue 11).  Python 3 standard library only; certificates
are made with the openssl command.  It does not check JWS signatures.

usage: hostile_ca.py --dir DIR --scenario NAME [--delay SECONDS]

It makes, in DIR: a TLS certificate for 127.0.0.1 and 127.0.0.2
(DIR/tls.pem: the ca-bundle to give p11enroll), an issuing CA, and
DIR/port once it listens on https://127.0.0.1:PORT/dir (and on 127.0.0.2 at
the same port, the "other origin" of foreign-url).  It runs until killed.

Scenarios: good, expired, not-yet-valid, ca-leaf, no-serverauth,
slow-badnonce, esc-names, bad-chain, foreign-url, huge-retry-after,
problem-with-escapes, order-invalid, wrong-content-type, huge-body,
bad-nonce-forever.
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import sys
import threading
import time

SCENARIOS = {
    "good": "a correct CA: the run must succeed",
    "expired": "the certificate was valid only in the past",
    "not-yet-valid": "the certificate becomes valid next year",
    "ca-leaf": "the leaf says basicConstraints CA:TRUE",
    "no-serverauth": "the leaf's EKU lacks serverAuth",
    "slow-badnonce": "every POST answered after --delay s with badNonce",
    "esc-names": "the leaf's CN and an extra SAN hold ESC/CSI bytes",
    "bad-chain": "the chain does not link to the leaf",
    "foreign-url": "order, authorization, finalize, certificate URLs on 127.0.0.2",
    "huge-retry-after": "the order stays processing with Retry-After 2^32",
    "problem-with-escapes": "newOrder answers a problem whose detail has escapes",
    "order-invalid": "the order becomes invalid with an escaped error",
    "wrong-content-type": "the certificate comes as text/html",
    "huge-body": "the certificate download is 8 MiB",
    "bad-nonce-forever": "every POST answered at once with badNonce",
}

ESC = "\x1b[31m\x1b]0;pwned\x07\x1b[2J"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def openssl(*args, stdin=None):
    r = subprocess.run(["openssl", *args], input=stdin, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], r.stderr.decode(errors="replace")))
    return r.stdout


class CA:
    """The TLS certificate, the issuing CA and issuance with `openssl ca`."""

    def __init__(self, d):
        self.d = d
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", "/CN=hostile-ca tls",
                "-addext", "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost",
                "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.pem")
        for name in ("root", "other"):
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "30", "-subj", f"/CN=hostile {name} CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.pem")
        os.makedirs(f"{d}/issued", exist_ok=True)
        open(f"{d}/index.txt", "w").close()
        with open(f"{d}/serial", "w") as f:
            f.write("1000\n")
        with open(f"{d}/ca.cnf", "w") as f:
            f.write(f"""[ca]
default_ca = hostile
[hostile]
database = {d}/index.txt
new_certs_dir = {d}/issued
certificate = {d}/root.pem
private_key = {d}/root.key
serial = {d}/serial
default_md = sha256
default_days = 30
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[anything]
commonName = optional
""")
        self.lock = threading.Lock()
        self.n = 0

    def issue(self, csr_der, scenario):
        """A PEM chain for the CSR's key and names, bent as the scenario says."""
        with self.lock:
            self.n += 1
            base = f"{self.d}/csr{self.n}"
            with open(base + ".der", "wb") as f:
                f.write(csr_der)
            csr = openssl("req", "-inform", "DER", "-in", base + ".der")
            with open(base + ".pem", "wb") as f:
                f.write(csr)
            text = openssl("req", "-in", base + ".pem", "-noout", "-text").decode().splitlines()
            at = [i for i, line in enumerate(text) if "Subject Alternative Name" in line]
            if not at:
                raise RuntimeError("the CSR has no subjectAltName")
            san = text[at[0] + 1].strip().replace(", ", ",")
            eku = "clientAuth" if scenario == "no-serverauth" else "serverAuth,clientAuth"
            bc = "critical,CA:TRUE" if scenario == "ca-leaf" else "critical,CA:FALSE"
            args = []
            if scenario == "esc-names":
                san += ",DNS:evil" + ESC + ".contoso.com"
                args += ["-subj", "/CN=sip.contoso.com" + ESC, "-utf8"]
            with open(base + ".ext", "w") as f:
                f.write(f"basicConstraints = {bc}\nkeyUsage = critical,digitalSignature,"
                        f"keyEncipherment\nextendedKeyUsage = {eku}\n"
                        f"subjectAltName = {san}\n")
            now = datetime.datetime.now(datetime.timezone.utc)
            fmt = "%Y%m%d%H%M%SZ"
            if scenario == "expired":
                start, end = now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)
            elif scenario == "not-yet-valid":
                start, end = now + datetime.timedelta(days=365), now + datetime.timedelta(days=455)
            else:
                start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30)
            openssl("ca", "-batch", "-notext", "-config", f"{self.d}/ca.cnf",
                    "-in", base + ".pem", "-out", base + ".crt", "-extfile", base + ".ext",
                    "-startdate", start.strftime(fmt), "-enddate", end.strftime(fmt), *args)
            leaf = open(base + ".crt").read()
            issuer = "other" if scenario == "bad-chain" else "root"
            return leaf + open(f"{self.d}/{issuer}.pem").read()


class State:
    def __init__(self, args, ca, port):
        self.scenario = args.scenario
        self.delay = args.delay
        self.ca = ca
        self.origin = f"https://127.0.0.1:{port}"
        other = f"https://127.0.0.2:{port}"
        self.far = other if self.scenario == "foreign-url" else self.origin
        self.lock = threading.Lock()
        self.nonce = 0
        self.orders = {}    # id -> {"names": [...], "status": str, "chain": str|None}

    def new_nonce(self):
        with self.lock:
            self.nonce += 1
            return base64.urlsafe_b64encode(b"nonce-%08d" % self.nonce).decode().rstrip("=")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    st = None

    def log_message(self, fmt, *a):
        sys.stderr.write("hostile_ca: %s %s\n" % (self.address_string(), fmt % a))

    def send(self, code, body=b"", ctype="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Replay-Nonce", self.st.new_nonce())
        self.send_header("Cache-Control", "no-store")
        if body:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def problem(self, code, typ, detail):
        self.send(code, {"type": "urn:ietf:params:acme:error:" + typ, "detail": detail},
                  "application/problem+json")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.st
        if self.path == "/dir":
            return self.send(200, {
                "newNonce": st.origin + "/nonce", "newAccount": st.origin + "/acct",
                "newOrder": st.origin + "/order-new", "revokeCert": st.origin + "/revoke",
                "keyChange": st.origin + "/keychange",
                "meta": {"termsOfService": st.origin + "/tos"}})
        if self.path == "/nonce":
            return self.send(200 if self.command == "HEAD" else 204)
        return self.problem(404, "malformed", "no such resource")

    def payload(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        p = body.get("payload", "")
        return json.loads(b64url_decode(p)) if p else None

    def order_json(self, oid):
        o = self.st.orders[oid]
        j = {"status": o["status"],
             "expires": "2099-01-01T00:00:00Z",
             "identifiers": [{"type": "dns", "value": n} for n in o["names"]],
             "authorizations": [f"{self.st.far}/authz/{oid}/{i}" for i in range(len(o["names"]))],
             "finalize": f"{self.st.far}/order/{oid}/finalize"}
        if o["status"] == "valid":
            j["certificate"] = f"{self.st.far}/cert/{oid}"
        if o["status"] == "invalid":
            j["error"] = {"type": "urn:ietf:params:acme:error:unauthorized" + ESC,
                          "detail": "refused " + ESC + " by policy"}
        return j

    def do_POST(self):
        st, sc, path = self.st, self.st.scenario, self.path
        try:
            payload = self.payload()
        except (ValueError, UnicodeDecodeError):
            return self.problem(400, "malformed", "not a JWS")
        if sc == "slow-badnonce":
            time.sleep(st.delay)
        if sc in ("slow-badnonce", "bad-nonce-forever"):
            return self.problem(400, "badNonce", "try again")
        if path == "/acct":
            return self.send(201, {"status": "valid", "orders": st.origin + "/orders"},
                             headers=[("Location", st.origin + "/acct/1")])
        if path == "/order-new":
            if sc == "problem-with-escapes":
                return self.problem(403, "rejectedIdentifier" + ESC,
                                    "no " + ESC + "\x7f\x9b[31m names for you")
            names = [i["value"] for i in payload["identifiers"]]
            with st.lock:
                oid = str(len(st.orders) + 1)
                st.orders[oid] = {"names": names, "status": "pending", "chain": None}
            return self.send(201, self.order_json(oid),
                             headers=[("Location", f"{st.far}/order/{oid}")])
        parts = path.strip("/").split("/")
        if parts[0] == "authz" and len(parts) == 3 and parts[1] in st.orders:
            o = st.orders[parts[1]]
            name = o["names"][int(parts[2])]
            if o["status"] == "pending":
                o["status"] = "invalid" if sc == "order-invalid" else "ready"
            return self.send(200, {
                "status": "valid", "expires": "2099-01-01T00:00:00Z",
                "identifier": {"type": "dns", "value": name},
                "challenges": [{"type": "http-01", "status": "valid",
                                "url": f"{st.far}/chall/{parts[1]}/{parts[2]}",
                                "token": "aGVsbG8td29ybGQtdG9rZW4"}]})
        if parts[0] == "order" and len(parts) == 3 and parts[2] == "finalize" \
                and parts[1] in st.orders:
            o = st.orders[parts[1]]
            try:
                o["chain"] = st.ca.issue(b64url_decode(payload["csr"]), sc)
            except (RuntimeError, KeyError, ValueError) as e:
                return self.problem(400, "badCSR", str(e)[:200])
            o["status"] = "processing" if sc == "huge-retry-after" else "valid"
            return self.send(200, self.order_json(parts[1]),
                             headers=[("Location", f"{st.far}/order/{parts[1]}")])
        if parts[0] == "order" and len(parts) == 2 and parts[1] in st.orders:
            hdrs = [("Retry-After", "4294967296")] if sc == "huge-retry-after" else []
            return self.send(200, self.order_json(parts[1]), headers=hdrs)
        if parts[0] == "cert" and len(parts) == 2 and parts[1] in st.orders:
            chain = st.orders[parts[1]]["chain"]
            if sc == "wrong-content-type":
                return self.send(200, "<html>" + chain, "text/html")
            if sc == "huge-body":
                return self.send(200, chain + "A" * (8 << 20), "application/pem-certificate-chain")
            return self.send(200, chain, "application/pem-certificate-chain")
        return self.problem(404, "malformed", "no such resource")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--delay", type=float, default=5.0)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    ca = CA(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{d}/tls.pem", f"{d}/tls.key")
    first = Server(("127.0.0.1", args.port), Handler)
    port = first.server_address[1]
    servers = [first]
    try:
        servers.append(Server(("127.0.0.2", port), Handler))
    except OSError as e:
        sys.stderr.write(f"hostile_ca: no 127.0.0.2:{port} ({e}); foreign URLs will not answer\n")
    Handler.st = State(args, ca, port)
    for s in servers:
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    with open(f"{d}/port.tmp", "w") as f:
        f.write(f"{port}\n")
    os.rename(f"{d}/port.tmp", f"{d}/port")
    sys.stderr.write(f"hostile_ca: {args.scenario} on https://127.0.0.1:{port}/dir\n")
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
