"""Bearer token verification: every way a token can be wrong ends in a clear 401."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from feed_api import auth
from feed_api.auth import TokenVerifier, bearer_token
from feed_api.errors import ApiError

ISS = "https://auth.test"
AUD = "feed-api-test"


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_key_file(
    signing_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("keys") / "public.pem"
    path.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture
def verifier(public_key_file: Path) -> TokenVerifier:
    return TokenVerifier(issuer=ISS, audience=AUD, public_key_file=str(public_key_file))


def make_token(
    key: rsa.RSAPrivateKey, headers: dict[str, Any] | None = None, **overrides: Any
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "alice", "iat": now, "exp": now + 600}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, _private_pem(key), algorithm="RS256", headers=headers)


def assert_401(exc: pytest.ExceptionInfo[ApiError], fragment: str) -> None:
    assert exc.value.status == 401
    assert exc.value.code == "unauthorized"
    assert fragment in exc.value.message
    assert exc.value.headers and exc.value.headers["WWW-Authenticate"].startswith("Bearer ")


def test_valid_token_gives_subject(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    caller = verifier.verify(make_token(signing_key, sub="user-123"))
    assert caller.subject == "user-123"
    assert caller.claims["aud"] == AUD


def test_audience_list_containing_ours_is_accepted(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    assert verifier.verify(make_token(signing_key, aud=["other", AUD])).subject == "alice"


def test_expired(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    past = int(time.time()) - 3600
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(signing_key, iat=past - 60, exp=past))
    assert_401(exc, "expired")


def test_small_clock_skew_is_tolerated(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    just_expired = int(time.time()) - 5
    assert verifier.verify(make_token(signing_key, exp=just_expired)).subject == "alice"


@pytest.mark.parametrize(
    ("claim", "value", "fragment"),
    [("aud", "someone-else", "audience"), ("iss", "https://evil.example", "issuer")],
)
def test_wrong_audience_or_issuer(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey, claim: str, value: str, fragment: str
) -> None:
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(signing_key, **{claim: value}))
    assert_401(exc, fragment)


@pytest.mark.parametrize("claim", ["sub", "exp", "aud", "iss"])
def test_missing_required_claim(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey, claim: str
) -> None:
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(signing_key, **{claim: None}))
    assert exc.value.status == 401


def test_empty_subject(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(signing_key, sub="  "))
    assert_401(exc, "subject")


def test_tampered_payload(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    header, payload, signature = make_token(signing_key).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(ApiError) as exc:
        verifier.verify(f"{header}.{forged}.{signature}")
    assert_401(exc, "signature")


def test_signed_by_another_key(verifier: TokenVerifier) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(other))
    assert_401(exc, "signature")


def test_hs256_with_public_key_as_secret_is_refused(
    verifier: TokenVerifier, public_key_file: Path
) -> None:
    # The classic algorithm-confusion attack: only RS256 is accepted.
    now = int(time.time())
    claims = {"iss": ISS, "aud": AUD, "sub": "alice", "exp": now + 60}
    token = jwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), b"x" * 32, algorithm="HS256")
    with pytest.raises(ApiError) as exc:
        verifier.verify(token)
    assert exc.value.status == 401


def test_unsigned_token_is_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISS, "aud": AUD, "sub": "a", "exp": now + 60}, None, algorithm="none"
    )
    with pytest.raises(ApiError) as exc:
        verifier.verify(token)
    assert exc.value.status == 401


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", ""])
def test_garbage_token(verifier: TokenVerifier, garbage: str) -> None:
    with pytest.raises(ApiError) as exc:
        verifier.verify(garbage)
    assert exc.value.status == 401


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (None, "missing Authorization"),
        ("", "missing Authorization"),
        ("Basic dXNlcjpwYXNz", "Bearer <token>"),
        ("Bearer", "Bearer <token>"),
        ("Bearer   ", "Bearer <token>"),
    ],
)
def test_bad_authorization_header(header: str | None, fragment: str) -> None:
    with pytest.raises(ApiError) as exc:
        bearer_token(header)
    assert_401(exc, fragment)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"


def test_a_key_source_is_required() -> None:
    with pytest.raises(ValueError, match="JWT_JWKS_URL"):
        TokenVerifier(issuer=ISS, audience=AUD)


# --- JWKS -------------------------------------------------------------------------------------


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture
def jwks_verifier(
    monkeypatch: pytest.MonkeyPatch, signing_key: rsa.RSAPrivateKey
) -> tuple[TokenVerifier, list[int]]:
    fetches: list[int] = []

    def fetch_data(self: jwt.PyJWKClient) -> dict[str, Any]:
        fetches.append(1)
        return {"keys": [_jwk(signing_key, "k1")]}

    # No HTTP server needed: the client's fetch is the only network call.
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch_data)
    verifier = TokenVerifier(issuer=ISS, audience=AUD, jwks_url="https://idp.test/jwks.json")
    return verifier, fetches


def test_jwks_key_by_kid_and_cached(
    jwks_verifier: tuple[TokenVerifier, list[int]], signing_key: rsa.RSAPrivateKey
) -> None:
    verifier, fetches = jwks_verifier
    token = make_token(signing_key, headers={"kid": "k1"})
    assert verifier.verify(token).subject == "alice"
    assert verifier.verify(token).subject == "alice"
    assert len(fetches) == 1  # the key set is cached across requests


def test_jwks_unknown_kid(
    jwks_verifier: tuple[TokenVerifier, list[int]], signing_key: rsa.RSAPrivateKey
) -> None:
    verifier, _ = jwks_verifier
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(signing_key, headers={"kid": "rotated-away"}))
    assert_401(exc, "signing key")


def test_jwks_unreachable_is_503(
    monkeypatch: pytest.MonkeyPatch, signing_key: rsa.RSAPrivateKey
) -> None:
    def fetch_data(self: jwt.PyJWKClient) -> dict[str, Any]:
        raise jwt.PyJWKClientConnectionError("connection refused")

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch_data)
    verifier = TokenVerifier(issuer=ISS, audience=AUD, jwks_url="https://idp.test/jwks.json")
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(signing_key, headers={"kid": "k1"}))
    assert exc.value.status == 503


@pytest.mark.parametrize("sub", ["ali\x00ce", "alice\n", "\x1bx", "a\x7fb", "a\ud800b"])
def test_subject_with_control_characters(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey, sub: str
) -> None:
    # PostgreSQL refuses NUL in text: such a subject would fail every lookup with a 500.
    with pytest.raises(ApiError) as exc:
        verifier.verify(make_token(signing_key, sub=sub))
    assert_401(exc, "control characters")


# -- verified tokens are trusted again until their expiry ----------------------------------------


def test_a_verified_token_is_not_verified_again(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token(signing_key, sub="cached")
    assert verifier.verify(token).subject == "cached"

    def no_second_check(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("verified in full again")

    monkeypatch.setattr(jwt, "decode", no_second_check)
    assert verifier.verify(token).subject == "cached"
    with pytest.raises(AssertionError):  # any other token string is checked in full
        verifier.verify(token + "x")


def test_a_cached_token_is_refused_once_it_expires(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    # Valid for one more second thanks to the leeway; trusted for exactly that long.
    token = make_token(signing_key, exp=int(time.time()) + 1 - auth.LEEWAY_SECONDS)
    assert verifier.verify(token).subject == "alice"
    time.sleep(2.1)
    with pytest.raises(ApiError) as exc:
        verifier.verify(token)
    assert_401(exc, "expired")


def test_a_cached_token_is_checked_again_after_the_trust_bound(
    public_key_file: Path, signing_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000.0]
    verifier = TokenVerifier(
        issuer=ISS, audience=AUD, public_key_file=str(public_key_file), clock=lambda: now[0]
    )
    token = make_token(signing_key)
    verifier.verify(token)
    calls = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    now[0] += auth.VERIFIED_TOKEN_SECONDS - 1
    verifier.verify(token)
    assert calls == []
    now[0] += 2
    verifier.verify(token)
    assert calls == [1]


def test_the_verified_token_cache_is_bounded(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKEN_CACHE_SIZE", 3)
    tokens = [make_token(signing_key, sub=f"u{i}") for i in range(5)]
    for token in tokens:
        verifier.verify(token)
    assert len(verifier._verified) == 3
    assert set(verifier._verified) == set(tokens[2:])
