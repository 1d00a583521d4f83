"""Tokens from an identity provider (the contract's "Tokens from an identity
provider (JWKS)"): keys and tokens made by PyJWT and python3-cryptography
(Debian), an independent implementation; the key set served over HTTP on
127.0.0.1 by the test itself and changed while the service runs.

Every algorithm with typ absent, JWT and at+jwt; the claims matrix per
algorithm; algorithm confusion; keys that are not for signing; rotation
(an unknown kid fetches the set again, once for the whole pool); removal
(a removed key stops working within one refresh, cached tokens included);
an outage (known keys keep working); a set that does not parse (refused
whole); a first start while the provider is unreachable (/readyz 503, then
200); the token tool's --key and --jwks with JWT_JWKS_FILE.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest

try:
    import jwt
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as e:  # fails every test, with the fix
    raise SystemExit("test_jwks needs PyJWT and cryptography (apt-get install python3-jwt "
                     "python3-cryptography; scripts/install-deps test installs them): %s" % e)

from harness import BUILD, Stack

ISSUER = "https://idp.test/realms/orders"
AUDIENCE = "orders-api"
ALL_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
REFRESH_S = 2
MIN_REFRESH_S = 1


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """A private key, its kid, and its public JWK (as PyJWT writes it)."""

    def __init__(self, kind, kid, alg=None, use="sig"):
        self.kind, self.kid = kind, kid
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key())
        elif kind in ("P-256", "P-384"):
            curve = ec.SECP256R1() if kind == "P-256" else ec.SECP384R1()
            self.private = ec.generate_private_key(curve)
            jwk = ECAlgorithm.to_jwk(self.private.public_key())
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            jwk = OKPAlgorithm.to_jwk(self.private.public_key())
        self.jwk = json.loads(jwk)
        self.jwk["kid"] = kid
        if use is not None:
            self.jwk["use"] = use
        if alg is not None:
            self.jwk["alg"] = alg

    def pem(self):
        return self.private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())


def key_kind(alg):
    if alg[:2] in ("RS", "PS"):
        return "RSA"
    return {"ES256": "P-256", "ES384": "P-384", "EdDSA": "Ed25519"}[alg]


def claims(**over):
    now = int(time.time())
    c = {"sub": "idp-user", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600,
         "scope": "orders.read orders.write"}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def token(key, alg, typ="JWT", kid="default", **over):
    headers = {"kid": key.kid if kid == "default" else kid, "typ": typ}
    if headers["kid"] is None:
        del headers["kid"]
    return jwt.encode(claims(**over), key.private, algorithm=alg, headers=headers)


def hand_token(header, payload, sign):
    """header and payload as dicts, sign(bytes) -> signature bytes."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + b64(sign(signing_input.encode()))


class IdP:
    """An identity provider's JWKS endpoint on 127.0.0.1: what it serves
    (a document, or an HTTP status) can be changed at any time, and it
    counts the fetches."""

    def __init__(self):
        self.lock = threading.Lock()
        self.body = b'{"keys":[]}'
        self.status = 200
        self.fetches = 0
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with idp.lock:
                    idp.fetches += 1
                    status, body = idp.status, idp.body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/jwks" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, keys=None, body=None, status=200):
        with self.lock:
            self.status = status
            self.body = body if body is not None else json.dumps(
                {"keys": [k.jwk for k in keys]}).encode()

    def fetch_count(self):
        with self.lock:
            return self.fetches

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def stack_env(idp_url, algs=ALL_ALGS):
    return {
        "JWT_JWKS_URL": idp_url,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "JWT_ALGORITHMS": ",".join(algs),
        "JWT_JWKS_REFRESH_S": str(REFRESH_S),
        "JWT_JWKS_MIN_REFRESH_S": str(MIN_REFRESH_S),
    }


class Tokens(unittest.TestCase):
    """One stack, one unchanging key set: what is accepted and refused."""

    @classmethod
    def setUpClass(cls):
        cls.keys = {
            "RSA": Key("RSA", "rsa-1"),
            "P-256": Key("P-256", "ec-1"),
            "P-384": Key("P-384", "ec-2"),
            "Ed25519": Key("Ed25519", "ed-1"),
        }
        cls.pinned = Key("RSA", "rsa-pinned", alg="RS256")
        cls.enc = Key("RSA", "rsa-enc", use="enc")
        cls.idp = IdP()
        cls.idp.serve(list(cls.keys.values()) + [cls.pinned, cls.enc])
        cls.stack = Stack(workers=2, env=stack_env(cls.idp.url))
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
        cls.idp.close()

    def get(self, tok):
        return self.stack.request("GET", "/orders?limit=1", token=tok).status

    def post(self, tok):
        return self.stack.request("POST", "/orders", body={"customerId": "c", "items": ["i"]},
                                  token=tok).status

    def test_every_algorithm_and_typ(self):
        for alg in ALL_ALGS:
            key = self.keys[key_kind(alg)]
            for typ in (None, "JWT", "at+jwt", "application/at+jwt"):
                with self.subTest(alg=alg, typ=typ):
                    self.assertEqual(self.get(token(key, alg, typ=typ)), 200)
        # A write, and the subject reaches the order's event.
        self.assertEqual(self.post(token(self.keys["P-256"], "ES256")), 201)

    def test_claims_matrix_per_algorithm(self):
        now = int(time.time())
        cases = [
            ({}, 200, 201),
            ({"exp": now - 120}, 401, 401),
            ({"exp": None}, 401, 401),
            ({"exp": "soon"}, 401, 401),
            ({"nbf": now + 3600}, 401, 401),
            ({"iat": now + 3600}, 401, 401),
            ({"iss": "https://other.idp"}, 401, 401),
            ({"iss": None}, 401, 401),
            ({"aud": "someone-else"}, 401, 401),
            ({"aud": ["someone-else", AUDIENCE]}, 200, 201),
            ({"scope": "orders.read"}, 200, 403),
            ({"scope": None, "scp": ["orders.write"]}, 403, 201),
            ({"scope": None}, 403, 403),
        ]
        for alg in ALL_ALGS:
            key = self.keys[key_kind(alg)]
            for over, want_get, want_post in cases:
                with self.subTest(alg=alg, claims=over):
                    tok = token(key, alg, **over)
                    self.assertEqual((self.get(tok), self.post(tok)), (want_get, want_post))

    def test_algorithm_confusion(self):
        rsa_key = self.keys["RSA"]
        pem = rsa_key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        payload = claims()
        # HS256 "signed" with the RSA public key (RFC 8725 3.1): the
        # service has no HMAC algorithm with a key set.
        for secret in (pem, json.dumps(rsa_key.jwk).encode()):
            tok = hand_token({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}, payload,
                             lambda m, s=secret: hmac.new(s, m, hashlib.sha256).digest())
            self.assertEqual(self.get(tok), 401)
        # alg none, any spelling, with and without a signature.
        for alg in ("none", "None", "NONE"):
            tok = hand_token({"alg": alg, "kid": rsa_key.kid}, payload, lambda m: b"")
            self.assertEqual(self.get(tok), 401, alg)
        # An ES256 token naming the RSA key; an RS256 token naming the EC key.
        self.assertEqual(self.get(token(self.keys["P-256"], "ES256", kid=rsa_key.kid)), 401)
        self.assertEqual(self.get(token(rsa_key, "RS256", kid="ec-1")), 401)
        # The key's own alg pins it: PS256 with a key marked RS256.
        self.assertEqual(self.get(token(self.pinned, "RS256")), 200)
        self.assertEqual(self.get(token(self.pinned, "PS256")), 401)
        # An algorithm spelt otherwise than RFC 7518 spells it.
        tok = token(rsa_key, "RS256")
        h, p, s = tok.split(".")
        hdr = json.loads(base64.urlsafe_b64decode(h + "=="))
        hdr["alg"] = "rs256"
        self.assertEqual(self.get(b64(json.dumps(hdr).encode()) + "." + p + "." + s), 401)
        # A signature by another key under a known kid.
        other = Key("RSA", rsa_key.kid)
        self.assertEqual(self.get(token(other, "RS256")), 401)
        # A typ that is not a JWT.
        self.assertEqual(self.get(token(rsa_key, "RS256", typ="JOSE")), 401)

    def test_keys_not_for_signing_and_kid_rules(self):
        # use=enc keys are not keys to verify with.
        self.assertEqual(self.get(token(self.enc, "RS256")), 401)
        # No kid: several keys fit RS256, so none is guessed.
        self.assertEqual(self.get(token(self.keys["RSA"], "RS256", kid=None)), 401)
        # No kid, and a single key fits: it is the key.
        self.assertEqual(self.get(token(self.keys["Ed25519"], "EdDSA", kid=None)), 200)

    def test_unknown_kid_is_quick_and_refused(self):
        # A made-up kid asks for a fetch at most once per MIN_REFRESH_S;
        # whatever the fetch, the request is answered within the bound
        # (2 s wait) and refused.
        stranger = Key("P-256", "nobody-knows")
        t0 = time.monotonic()
        for _ in range(5):
            self.assertEqual(self.get(token(stranger, "ES256")), 401)
        self.assertLess(time.monotonic() - t0, 5 * 2.5)


class Rotation(unittest.TestCase):
    """One stack whose identity provider rotates, removes, fails and
    serves garbage, in that order."""

    def setUp(self):
        self.idp = IdP()
        self.k1 = Key("RSA", "k1")
        self.idp.serve([self.k1])
        self.stack = Stack(workers=2, env=stack_env(self.idp.url))
        self.stack.start()

    def tearDown(self):
        self.stack.stop()
        self.idp.close()

    def get(self, tok):
        return self.stack.request("GET", "/orders?limit=1", token=tok).status

    def refused(self):
        """The fetcher's "key set refused" log lines so far, in order."""
        return [l for l in self.stack.worker_log_lines()
                if l.get("message", "").startswith("key set refused")]

    def refusal_after(self, seen, reason_fits):
        """Waits (at most three refresh intervals) for a refusal logged
        after the first `seen` ones whose reason fits; returns the reason."""
        def found():
            return next((l["reason"] for l in self.refused()[seen:]
                         if reason_fits(l.get("reason", ""))), None)
        return self.stack.wait_for(found, timeout=REFRESH_S * 3, what="the key set refused")

    def test_rotation_removal_outage_and_bad_sets(self):
        t1 = token(self.k1, "RS256")
        self.assertEqual(self.get(t1), 200)

        # Rotation: k2 appears; the first token with kid k2 fetches the set
        # again (once, for the whole pool) and is accepted.
        k2 = Key("P-256", "k2")
        self.idp.serve([self.k1, k2])
        time.sleep(MIN_REFRESH_S + 0.2)
        before = self.idp.fetch_count()
        t2 = token(k2, "ES256")
        self.assertEqual(self.get(t2), 200)
        for _ in range(6):  # both workers, several requests: no fetch each
            self.assertEqual(self.get(t2), 200)
        self.assertLessEqual(self.idp.fetch_count() - before, 2)

        # Removal: k1 leaves the set; its token (cached by now) stops
        # working within one refresh interval.
        self.idp.serve([k2])
        self.stack.wait_for(lambda: self.get(t1) == 401 and self.get(t1) == 401,
                            timeout=REFRESH_S * 3, what="removed key refused")
        self.assertEqual(self.get(t2), 200)

        # Outage: the provider fails; the known key keeps working after
        # each refresh that got the failure (the fetcher logs the refusal
        # once it has dealt with the response: waited for, not slept on).
        for status_body in ((500, b"oops"), (503, b"")):
            seen = len(self.refused())
            self.idp.serve(status=status_body[0], body=status_body[1])
            self.refusal_after(seen, lambda why: why == "HTTP status %d" % status_body[0])
            self.assertEqual(self.get(t2), 200)
        # A set that does not parse is refused whole: a valid new key next
        # to a malformed one is not taken, and the last good set stays.
        k3 = Key("Ed25519", "k3")
        broken = {"kty": "RSA", "kid": "bad", "n": "!!!", "e": "AQAB"}
        seen = len(self.refused())
        self.idp.serve(body=json.dumps({"keys": [k2.jwk, k3.jwk, broken]}).encode())
        broken_why = self.refusal_after(seen, lambda why: not why.startswith("HTTP status"))
        t3 = token(k3, "EdDSA")
        self.assertEqual(self.get(t3), 401)
        self.assertEqual(self.get(t2), 200)
        seen = len(self.refused())
        self.idp.serve(body=b"<html>not json</html>")
        self.refusal_after(seen, lambda why: not why.startswith("HTTP status") and why != broken_why)
        self.assertEqual(self.get(t2), 200)
        # And back: the provider serves a good set with k3.
        self.idp.serve([k2, k3])
        self.stack.wait_for(lambda: self.get(t3) == 200, timeout=REFRESH_S * 3,
                            what="k3 accepted after the outage")
        refused = [l for l in self.stack.worker_log_lines()
                   if l.get("message", "").startswith("key set refused")]
        self.assertTrue(refused, "no log line for the refused key sets")
        self.assertFalse([l for l in refused if "127.0.0.1" in json.dumps(l)],
                         "the URL (it may carry credentials) reached the log")


class FirstStart(unittest.TestCase):
    def test_unreachable_at_start_then_ready(self):
        idp = IdP()
        idp.serve(status=503, body=b"")
        k = Key("P-256", "late")
        stack = Stack(workers=2, env=stack_env(idp.url), wait_path="/healthz")
        stack.start()
        try:
            r = stack.request("GET", "/readyz")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.headers.get("retry-after"), "1")
            r = stack.request("GET", "/orders?limit=1", token=token(k, "ES256"))
            self.assertEqual(r.status, 503)
            idp.serve([k])
            stack.wait_for(lambda: stack.request("GET", "/readyz").status == 200, timeout=10,
                           what="/readyz 200 once the key set is reachable")
            self.assertEqual(stack.request("GET", "/orders?limit=1",
                                           token=token(k, "ES256")).status, 200)
        finally:
            stack.stop()
            idp.close()


class TokenTool(unittest.TestCase):
    """orders-token --key signs as an identity provider would and --jwks
    prints the set that verifies it; the service reads it from a file."""

    def test_tool_with_jwks_file(self):
        tool = os.path.join(BUILD, "tools", "orders-token")
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            keys = [(Key("RSA", "t-rsa"), "RS256"), (Key("RSA", "t-ps"), "PS384"),
                    (Key("P-256", "t-ec"), "ES256"), (Key("Ed25519", "t-ed"), "EdDSA")]
            jwks = {"keys": []}
            for k, alg in keys:
                path = os.path.join(d, k.kid + ".pem")
                with open(path, "wb") as f:
                    f.write(k.pem())
                out = subprocess.run([tool, "--key", path, "--alg", alg, "--kid", k.kid,
                                      "--jwks"], capture_output=True, check=True, text=True)
                jwks["keys"] += json.loads(out.stdout)["keys"]
                k.path = path
            jwks_path = os.path.join(d, "jwks.json")
            with open(jwks_path, "w") as f:
                json.dump(jwks, f)
            os.chmod(jwks_path, 0o644)
            # PyJWT agrees with the tool's set and tokens.
            for (k, alg), jwk in zip(keys, jwks["keys"]):
                out = subprocess.run([tool, "--key", k.path, "--alg", alg, "--kid", k.kid,
                                      "--iss", ISSUER, "--aud", AUDIENCE],
                                     capture_output=True, check=True, text=True)
                k.token = out.stdout.strip()
                pub = jwt.PyJWK(jwk).key
                self.assertEqual(jwt.decode(k.token, pub, algorithms=[alg], audience=AUDIENCE,
                                            issuer=ISSUER)["sub"], "user-123")
            env = {"JWT_JWKS_FILE": jwks_path, "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE,
                   "JWT_ALGORITHMS": "RS256,PS384,ES256,EdDSA"}
            with Stack(workers=1, env=env) as stack:
                for k, alg in keys:
                    self.assertEqual(stack.request("GET", "/orders?limit=1",
                                                   token=k.token).status, 200, alg)
            bad = subprocess.run([tool, "--key", keys[0][0].path, "--alg", "ES256"],
                                 capture_output=True, text=True)
            self.assertEqual(bad.returncode, 1)
            self.assertIn("does not fit", bad.stderr)
            self.assertEqual(bad.stdout, "")


if __name__ == "__main__":
    unittest.main()
