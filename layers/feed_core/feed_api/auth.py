"""Bearer JWT verification (RS256).

In AWS the HTTP API's JWT authorizer has already checked the token; the app checks it again so
it is never exposed without auth (dev server, a misconfigured route, a direct invoke). The
caller's identity is the token's `sub`; no endpoint accepts a user id to act as someone else.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import jwt

from feed_api.errors import ApiError
from feed_wiring.settings import Settings

ALGORITHMS = ["RS256"]
# Small tolerance for clock skew between the issuer and Lambda hosts.
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# A subject is looked up in PostgreSQL, which refuses NUL (and cannot encode lone surrogates):
# refuse such a token here rather than fail the lookup with a 500.
_BAD_SUBJECT_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# A token verified once is trusted again without the RSA check (about 0.15 ms of a warm read)
# until its expiry, but for at most this long: a signing key removed from the JWKS stops being
# honoured within this bound, as the JWKS client's own key cache already allows.
VERIFIED_TOKEN_SECONDS = 300
VERIFIED_TOKEN_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: `subject` is the JWT `sub` (users.auth_subject)."""

    subject: str
    claims: dict[str, Any]


def unauthorized(message: str, error: str = "invalid_token") -> ApiError:
    # RFC 6750: tell the client which scheme and why, so it knows to fetch a new token.
    safe = " ".join(message.replace('"', "'").split())  # keep the header value well-formed
    challenge = f'Bearer error="{error}", error_description="{safe}"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


class TokenVerifier:
    """Checks signature, expiry, issuer and audience; keys come from JWKS or a local PEM file."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        public_key_file: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not jwks_url and not public_key_file:
            # Fail at init rather than answer 401 to everyone.
            raise ValueError("set JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE to verify bearer tokens")
        self.issuer = issuer
        self.audience = audience
        self._jwks_url = jwks_url
        self._public_key_file = public_key_file
        self._jwks_client: jwt.PyJWKClient | None = None
        self._pem_key: Any = None
        self._lock = Lock()
        self._clock = clock
        # token -> (caller, trusted until): exact token strings only, so a token differing in any
        # byte is verified in full.
        self._verified: dict[str, tuple[Caller, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks_url=settings.jwt_jwks_url,
            public_key_file=settings.jwt_public_key_file,
        )

    def _key_for(self, token: str) -> Any:
        if self._jwks_url:
            with self._lock:
                if self._jwks_client is None:
                    # One client per process: it caches the key set (5 min) and keys by kid,
                    # so warm invocations do not fetch the JWKS again.
                    self._jwks_client = jwt.PyJWKClient(
                        self._jwks_url, cache_keys=True, lifespan=300, timeout=5
                    )
            try:
                return self._jwks_client.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError as exc:
                raise ApiError(
                    503, "unavailable", "cannot fetch the token signing keys; try again"
                ) from exc
            except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
                raise unauthorized(f"token signing key not recognised: {exc}") from exc
        if self._pem_key is None:
            # Read lazily: the dev server may create the key pair after this object exists.
            pem = Path(self._public_key_file or "").read_bytes()
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._pem_key = load_pem_public_key(pem)
        return self._pem_key

    def verify(self, token: str) -> Caller:
        now = self._clock()
        hit = self._verified.get(token)
        if hit is not None:
            if now < hit[1]:
                return hit[0]
            self._verified.pop(token, None)  # past its time: verified in full (and refused)
        caller, expires_at = self._verify_in_full(token)
        if len(self._verified) >= VERIFIED_TOKEN_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified), ""), None)  # the oldest entry
        self._verified[token] = (caller, min(expires_at, now + VERIFIED_TOKEN_SECONDS))
        return caller

    def _verify_in_full(self, token: str) -> tuple[Caller, float]:
        """The caller and when the token expires (with the leeway the check allows)."""
        try:
            key = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise unauthorized(f"token audience is not {self.audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise unauthorized(f"token issuer is not {self.issuer!r}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise unauthorized("token must be signed with RS256") from exc
        except jwt.InvalidSignatureError as exc:
            raise unauthorized("token signature is invalid") from exc
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"token is invalid: {exc}") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise unauthorized("token subject is empty")
        if _BAD_SUBJECT_CHARS.search(subject):
            raise unauthorized("token subject contains control characters or invalid unicode")
        return Caller(subject=subject, claims=claims), float(claims["exp"]) + LEEWAY_SECONDS


def bearer_token(authorization: str | None) -> str:
    """The token from an `Authorization: Bearer <token>` header value."""
    if not authorization:
        raise unauthorized("missing Authorization header; send 'Bearer <token>'", "invalid_request")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'", "invalid_request")
    return token.strip()
