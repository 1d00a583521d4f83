#!/usr/bin/python3
"""Writes tests/data/jwt-vectors.json: HS256 bearer tokens minted by PyJWT.

PyJWT (Debian's python3-jwt) is an implementation independent of ours, so
a mistake shared by our minting and our verifying cannot hide behind these
tokens.  HMAC signing is deterministic: running this again yields the same
file byte for byte, which is how a reader checks that the committed file
is what this script says it is:

    /usr/bin/python3 tests/data/make-jwt-vectors.py > /tmp/v.json
    cmp /tmp/v.json tests/data/jwt-vectors.json

Each vector says which HTTP status a GET /orders must get with
"Authorization: Bearer <token>" when JWT_SECRET_KEY is SECRET and no
issuer or audience is configured (a POST /orders where needs_scope is
orders.write).  Tokens expire on 2100-01-01, so they stay valid.

Used by tests/unit/test_auth.c (JWT_VECTORS) and tests/integration/
harness.py (VECTORS_PATH).
"""
import base64
import json
import sys

import jwt

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
OTHER_SECRET = "a-different-secret-0123456789abcdef012345"
FAR = 4102444800  # 2100-01-01T00:00:00Z
PAST = 946684800  # 2000-01-01T00:00:00Z
BOTH = "orders.read orders.write"
FULL = {"sub": "user-123", "scope": BOTH, "exp": FAR, "iat": PAST}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs(claims, alg="HS256", key=SECRET):
    return jwt.encode(claims, key, algorithm=alg)


def unsigned(alg):
    """alg "none" style: PyJWT only writes the lowercase spelling itself."""
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps(FULL, separators=(",", ":")).encode())
    return f"{header}.{payload}."


def main():
    good = hs(FULL)
    head, _, sig = good.split(".")
    tampered_payload = b64(json.dumps(dict(FULL, scope=BOTH + " admin")).encode())
    vectors = [
        ("valid_read_write", good, 200, None, "scope string with both scopes"),
        ("valid_scp_array", hs({"sub": "u", "scp": ["orders.read", "orders.write"], "exp": FAR}),
         200, None, "scp as an array"),
        ("valid_scp_string", hs({"sub": "u", "scp": BOTH, "exp": FAR}),
         200, None, "scp as a space-separated string"),
        ("valid_scopes_array", hs({"sub": "u", "scopes": ["orders.read", "orders.write"], "exp": FAR}),
         200, None, "scopes as an array"),
        ("read_only_on_write", hs({"sub": "u", "scope": "orders.read", "exp": FAR}),
         403, "orders.write", "read scope only, used to write"),
        ("write_only_on_read", hs({"sub": "u", "scope": "orders.write", "exp": FAR}),
         403, "orders.read", "write scope only, used to read"),
        ("no_scope", hs({"sub": "u", "exp": FAR}), 403, None, "no scope claim at all"),
        ("scope_case_differs", hs({"sub": "u", "scope": "Orders.Read ORDERS.WRITE", "exp": FAR}),
         403, None, "scope names are case-sensitive"),
        ("scope_prefix_only", hs({"sub": "u", "scope": "orders.readonly orders.writer", "exp": FAR}),
         403, None, "a scope is matched whole, never by prefix"),
        ("expired", hs({"sub": "u", "scope": BOTH, "exp": PAST}), 401, None, "exp in the past"),
        ("not_yet_valid", hs({"sub": "u", "scope": BOTH, "exp": FAR, "nbf": FAR - 3600}),
         401, None, "nbf far in the future"),
        ("no_exp", hs({"sub": "u", "scope": BOTH}), 401, None, "exp is required"),
        ("exp_not_number", hs({"sub": "u", "scope": BOTH, "exp": "never"}),
         401, None, "exp must be a number"),
        ("wrong_secret", hs(FULL, key=OTHER_SECRET), 401, None, "signed with another secret"),
        ("hs384", hs(FULL, alg="HS384"), 401, None, "right secret, an algorithm not configured"),
        ("hs512", hs(FULL, alg="HS512"), 401, None, "right secret, an algorithm not configured"),
        ("alg_none", unsigned("none"), 401, None, "unsigned token"),
        ("alg_none_upper", unsigned("NONE"), 401, None, "unsigned token, other spelling"),
        ("tampered_payload", f"{head}.{tampered_payload}.{sig}", 401, None,
         "payload changed after signing"),
        ("truncated", good[:-10], 401, None, "signature cut short"),
        ("two_parts", good.rsplit(".", 1)[0], 401, None, "no signature segment"),
        ("garbage", "not-a-jwt", 401, None, "not a JWT at all"),
        ("bad_base64", b64(b'{"alg":"HS256"}') + ".@@@@.abc", 401, None, "not base64url"),
        ("header_not_json", b64(b"nope") + "." + b64(b"{}") + ".abc", 401, None,
         "header is not JSON"),
    ]
    doc = {
        "secret": SECRET,
        "algorithm": "HS256",
        "note": "Minted with PyJWT by tests/data/make-jwt-vectors.py; see its docstring.",
        "vectors": [
            {"name": n, "token": t, "expect": e, "needs_scope": s, "note": note}
            for n, t, e, s, note in vectors
        ],
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
