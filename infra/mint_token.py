#!/usr/bin/env python3
"""Mint a bearer token for local development.

    .venv/bin/python infra/mint_token.py --sub alice            # prints a JWT valid for 1 hour
    curl -H "Authorization: Bearer $(.venv/bin/python infra/mint_token.py --sub alice)" ...

Creates an RSA key pair under `.state/keys/` the first time (git-ignored; never used outside
this machine). The dev server verifies with `public.pem` and serves it as a JWKS document at
`/.well-known/jwks.json`. Issuer and audience come from the same settings as the app
(JWT_ISSUER, JWT_AUDIENCE).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from feed_wiring.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_KEYS_DIR = REPO / ".state" / "keys"
DEFAULT_TTL_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class KeyPair:
    private_pem: Path
    public_pem: Path


def ensure_keypair(keys_dir: Path = DEFAULT_KEYS_DIR) -> KeyPair:
    """The local signing key pair, created on first use."""
    pair = KeyPair(keys_dir / "private.pem", keys_dir / "public.pem")
    if pair.private_pem.exists() and pair.public_pem.exists():
        return pair
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Write the public key last: its presence means the pair is complete.
    fd = os.open(pair.private_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pair.public_pem.write_bytes(public)
    return pair


def _b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_pem: bytes) -> dict[str, Any]:
    """The public key as a JWK with a stable `kid` (RFC 7638 thumbprint)."""
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("expected an RSA public key")
    numbers = key.public_numbers()
    jwk = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def jwks_document(public_pem: bytes) -> dict[str, Any]:
    return {"keys": [public_jwk(public_pem)]}


def mint_token(
    sub: str,
    *,
    settings: Settings,
    pair: KeyPair,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": sub,
        "iat": now,
        "exp": now + ttl_seconds,
        **(extra_claims or {}),
    }
    # The kid lets a JWKS verifier (the HTTP API's JWT authorizer) pick the key.
    kid = public_jwk(pair.public_pem.read_bytes())["kid"]
    private_pem = pair.private_pem.read_bytes()
    return jwt.encode(claims, private_pem, algorithm="RS256", headers={"kid": kid})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sub", required=True, help="the account (JWT sub) to act as")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds of validity")
    parser.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS_DIR)
    parser.add_argument(
        "--jwks", action="store_true", help="print the JWKS document instead of a token"
    )
    parser.add_argument(
        "--issuer",
        help="the token's iss (default JWT_ISSUER); `make up` prints the emulator stack's",
    )
    args = parser.parse_args(argv)
    pair = ensure_keypair(args.keys_dir)
    if args.jwks:
        print(json.dumps(jwks_document(pair.public_pem.read_bytes()), indent=2))
        return 0
    settings = Settings.from_env(os.environ)
    if args.issuer:
        settings = dataclasses.replace(settings, jwt_issuer=args.issuer)
    print(mint_token(args.sub, settings=settings, pair=pair, ttl_seconds=args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
