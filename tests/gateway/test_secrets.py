"""Operator secrets: weak ones stop the gateway (and `trainhouse up`) at start-up with one line on
stderr; RS256 JWTs are checked against a JWKS whose keys rotate by kid."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from trainhouse.common.jwt_keys import Jwks, JwtVerifier, KeyUnknown
from trainhouse.common import secret_checks
from tests.gateway.conftest import CLOSED, REPO, bearer, start_gateway

TRAIN = "/api/v1/training/train-agent"


@pytest.mark.parametrize("value", ["change-me", "change-me-too", "CHANGEME", "Change_Me", "changeit", "secret",
                                   "password", "admin", "short-but-random-9f8e", "x" * 40, "ab" * 30,
                                   "change-me-" + secrets.token_hex(32), "replace-me-with-" + secrets.token_hex(20)])
def test_weak_values_are_named(value: str) -> None:
    assert secret_checks.weakness(value) is not None


def test_generated_values_pass() -> None:
    for value in (secrets.token_urlsafe(32), secrets.token_hex(16), "th_" + secrets.token_urlsafe(32)):
        assert secret_checks.weakness(value) is None
    assert secret_checks.refusal({"TRAINHOUSE_JWT_SECRET": secrets.token_hex(32)}) is None


def test_the_development_flag_is_validated() -> None:
    weak = {"TRAINHOUSE_BOOTSTRAP_TOKEN": "change-me"}
    assert "TRAINHOUSE_BOOTSTRAP_TOKEN is a placeholder value" in secret_checks.refusal(weak)
    assert secret_checks.refusal({**weak, "TRAINHOUSE_INSECURE_DEV": "1"}) is None
    assert secret_checks.refusal({**weak, "TRAINHOUSE_INSECURE_DEV": "0"}) is not None
    with pytest.raises(SystemExit, match="TRAINHOUSE_INSECURE_DEV must be 1 or 0"):
        secret_checks.refusal({**weak, "TRAINHOUSE_INSECURE_DEV": "maybe"})


def _env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINHOUSE_")}
    env.update({"TRAINHOUSE_HOME": str(home), "TRAINHOUSE_GATEWAY_PORT": "0", **extra})
    for name in ("TRAINING", "DATA", "EVALUATION", "REGISTRY"):
        env[f"TRAINHOUSE_{name}_ADDR"] = CLOSED
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(REPO / ".gen"), env.get("PYTHONPATH")) if p)
    return env


@pytest.mark.parametrize("variable, value, says", [
    ("TRAINHOUSE_BOOTSTRAP_TOKEN", "change-me", "TRAINHOUSE_BOOTSTRAP_TOKEN is a placeholder value"),
    ("TRAINHOUSE_JWT_SECRET", "change-me-too", "TRAINHOUSE_JWT_SECRET is a placeholder value"),
    ("TRAINHOUSE_JWT_SECRET", "a1b2c3d4e5f6g7h8", "TRAINHOUSE_JWT_SECRET is shorter than 32 bytes"),
])
def test_gateway_refuses_to_start_with_a_weak_secret(tmp_path: Path, variable: str, value: str, says: str) -> None:
    port_file = tmp_path / "gateway.port"
    done = subprocess.run([sys.executable, "-m", "gateway"], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=_env(tmp_path, {variable: value, "TRAINHOUSE_PORT_FILE": str(port_file)}))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("trainhouse: refusing to start:") and says in last, done.stderr
    assert value not in done.stderr  # the reason never echoes the secret
    assert not port_file.exists()


def test_the_development_flag_lets_a_placeholder_through(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "dev", {"TRAINHOUSE_BOOTSTRAP_TOKEN": "change-me", "TRAINHOUSE_INSECURE_DEV": "1"})
    try:
        r = httpx.get(f"{gw.url}/api/v1/auth/tokens", headers=bearer("change-me"), timeout=10)
        assert r.status_code == 200, r.text
    finally:
        assert gw.stop() == 0
    assert "weak secret accepted" in (tmp_path / "dev" / "gateway.log").read_text()


def test_trainhouse_up_refuses_before_starting_anything(tmp_path: Path) -> None:
    env = _env(tmp_path, {"TRAINHOUSE_JWT_SECRET": "change-me-too"})
    done = subprocess.run([sys.executable, "-c", "from trainhouse.cli import main; main()", "up"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "TRAINHOUSE_JWT_SECRET is a placeholder value" in lines[0], done.stderr
    assert not (tmp_path / "run").exists()


# ---- RS256 with a JWKS ------------------------------------------------------------------------

def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


def _token(key: rsa.RSAPrivateKey, kid: str, scopes: list[str], exp_in: int = 300) -> str:
    return jwt.encode({"sub": "idp-user", "scopes": scopes, "exp": int(time.time()) + exp_in}, key, "RS256",
                      headers={"kid": kid})


def _hs256_signed_with(key: bytes, kid: str) -> str:
    """An HS256 token whose HMAC key is `key` (PyJWT refuses to make one with a PEM key)."""
    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps({"sub": "x", "scopes": ["admin"], "exp": int(time.time()) + 60}).encode())
    signature = b64(hmac.new(key, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + signature).decode()


def _write(path: Path, keys: list[dict[str, Any]], mtime: float) -> None:
    path.write_text(json.dumps({"keys": keys}))
    os.utime(path, (mtime, mtime))


def test_rs256_jwts_from_a_jwks_file_with_rotation(tmp_path: Path) -> None:
    old, new = _rsa_key(), _rsa_key()
    jwks = tmp_path / "jwks.json"
    _write(jwks, [_jwk(old, "k1")], time.time() - 100)
    hs_secret = secrets.token_urlsafe(32)
    gw = start_gateway(tmp_path / "home", {"TRAINHOUSE_JWT_JWKS": str(jwks), "TRAINHOUSE_JWT_SECRET": hs_secret})
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            def status(token: str) -> int:
                return c.get(f"{TRAIN}/job-1", headers=bearer(token)).status_code
            # Authenticated (the closed backend answers 503), scopes enforced, expiry enforced.
            assert status(_token(old, "k1", ["training:view"])) == 503
            assert c.post(TRAIN, headers=bearer(_token(old, "k1", ["training:view"])),
                          json={"agentId": "a"}).status_code == 403
            assert status(_token(old, "k1", ["admin"], exp_in=-10)) == 401
            assert status(_token(new, "k2", ["admin"])) == 401          # kid not published yet
            assert status(_token(new, "k1", ["admin"])) == 401          # right kid, wrong key
            # HS256 still works with the secret; the public key is no HS256 secret (algorithm confusion).
            assert status(jwt.encode({"sub": "s", "scopes": ["admin"], "exp": int(time.time()) + 60},
                                     hs_secret, "HS256")) == 503
            pem = old.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
            assert status(_hs256_signed_with(pem, "k1")) == 401
            unsigned = jwt.encode({"sub": "x", "scopes": ["admin"], "exp": int(time.time()) + 60}, None, "none")
            assert status(unsigned) == 401

            # Rotation: k2 published, k1 withdrawn; the file is read again when it changes.
            _write(jwks, [_jwk(new, "k2")], time.time())
            assert status(_token(new, "k2", ["training:view"])) == 503
            assert status(_token(old, "k1", ["training:view"])) == 401
    finally:
        assert gw.stop() == 0


def test_an_unreadable_jwks_file_stops_the_start(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gateway"], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=_env(tmp_path, {"TRAINHOUSE_JWT_JWKS": str(tmp_path / "missing.json")}))
    assert done.returncode != 0
    assert "TRAINHOUSE_JWT_JWKS: cannot read a JWKS" in done.stderr.strip().splitlines()[-1]


def test_a_jwks_url_is_fetched_again_for_an_unknown_kid() -> None:
    first, second = _rsa_key(), _rsa_key()
    published = {"keys": [_jwk(first, "a")]}
    fetches: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            fetches.append(self.path)
            body = json.dumps(published).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        verifier = JwtVerifier(jwks=Jwks(f"http://127.0.0.1:{server.server_address[1]}/jwks", cooldown_s=0))
        assert verifier.claims(_token(first, "a", ["admin"]))["sub"] == "idp-user"
        assert len(fetches) == 1
        published["keys"] = [_jwk(first, "a"), _jwk(second, "b")]
        assert verifier.claims(_token(second, "b", ["admin"]))["scopes"] == ["admin"]
        assert len(fetches) == 2
        with pytest.raises(KeyUnknown):
            verifier.claims(_token(second, "zzz", ["admin"]))
        with pytest.raises(KeyUnknown):  # no HS256 secret configured: an HS256 token has no key
            verifier.claims(jwt.encode({"exp": int(time.time()) + 60}, "s" * 40, "HS256"))
    finally:
        server.shutdown()
        server.server_close()


def test_issuer_and_audience_are_checked_when_configured() -> None:
    secret = secrets.token_urlsafe(32)
    verifier = JwtVerifier(secret=secret, issuer="https://idp.example.org/", audience="trainhouse-api")
    base = {"sub": "u1", "scopes": ["training:view"], "exp": int(time.time()) + 60}
    good = jwt.encode({**base, "iss": "https://idp.example.org/", "aud": "trainhouse-api"}, secret, algorithm="HS256")
    assert verifier.claims(good)["sub"] == "u1"
    for claims in ({**base, "iss": "https://evil.example.org/", "aud": "trainhouse-api"},
                   {**base, "iss": "https://idp.example.org/", "aud": "another-api"},
                   {**base, "aud": "trainhouse-api"},          # no issuer
                   {**base, "iss": "https://idp.example.org/"}):  # no audience
        with pytest.raises(jwt.PyJWTError):
            verifier.claims(jwt.encode(claims, secret, algorithm="HS256"))
    # Without a configured audience, a token meant for another audience is refused too.
    plain = JwtVerifier(secret=secret)
    with pytest.raises(jwt.PyJWTError):
        plain.claims(jwt.encode({**base, "aud": "another-api"}, secret, algorithm="HS256"))
    assert plain.claims(jwt.encode(base, secret, algorithm="HS256"))["sub"] == "u1"
