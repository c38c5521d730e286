"""Stand-ins for the HTTP layer's unit tests: a verifier that trusts `Bearer ok:<sub>`, a
profile for "alice", services that raise (or return) one thing. No store, no cryptography: those
tests are about the HTTP layer's behaviour."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from feed_api.auth import Caller, TokenVerifier, unauthorized
from newsfeed import errors

ME = SimpleNamespace(
    id=1111111111111111111,
    handle="alice",
    display_name="Alice",
    follower_count=0,
    following_count=0,
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
)


class StubVerifier(TokenVerifier):
    """Accepts `Bearer ok:<sub>`: the HTTP layer's tests are not about cryptography."""

    def __init__(self) -> None:
        super().__init__(issuer="i", audience="a", public_key_file="/unused")

    def verify(self, token: str) -> Caller:
        if not token.startswith("ok:"):
            raise unauthorized("token signature is invalid")
        return Caller(subject=token[3:], claims={})


class Raising:
    """A service whose every method raises `exc` (or returns `value`)."""

    def __init__(self, exc: Exception | None = None, value: Any = None) -> None:
        self.exc, self.value = exc, value

    def __getattr__(self, name: str) -> Any:
        def method(*args: Any, **kwargs: Any) -> Any:
            if self.exc is not None:
                raise self.exc
            return self.value

        return method


class UsersWithProfile(Raising):
    def get_by_subject(self, subject: str) -> Any:
        if subject == "alice":
            return ME
        raise errors.NotFound("no profile")

    def user_id_of(self, subject: str) -> int:
        return self.get_by_subject(subject).id
