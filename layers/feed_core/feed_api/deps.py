"""Request dependencies, declared once as `Annotated` types and reused by every router."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, WithJsonSchema

from feed_api.auth import Caller, TokenVerifier, bearer_token
from feed_api.errors import ApiError
from feed_wiring.root import Services
from newsfeed.errors import NotFound
from newsfeed.model import User

MAX_ID = 2**63 - 1  # ids are signed 64-bit (bigint / Int64)
MAX_CURSOR_CHARS = 512

# Declares the bearer security scheme in OpenAPI (Swagger's "Authorize" button). It does not
# reject anything itself: `_caller` does, with a clearer message than the default.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="RS256 JWT from the identity provider; `sub` is the caller's account. Locally: "
    "`python infra/mint_token.py --sub alice`.",
)


T = TypeVar("T")


async def run_blocking(request: Request, call: Callable[..., T], *args: object) -> T:
    """Run a blocking domain call from an async route: in the event loop's thread when the app
    serves one request at a time (a Lambda process: `app.state.inline_blocking`), where a
    worker thread is pure cost (a thread start and two hand-offs); in the thread pool
    otherwise (the dev server serves requests concurrently)."""
    if getattr(request.app.state, "inline_blocking", False):
        return call(*args)
    return await run_in_threadpool(call, *args)


# The two dependencies every route has are async: no I/O, microseconds of CPU, and a sync
# dependency costs a thread pool hand-off each.
async def _services(request: Request) -> Services:
    return request.app.state.services()


async def _caller(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(bearer_token(request.headers.get("authorization")))


ServicesDep = Annotated[Services, Depends(_services)]
CallerDep = Annotated[Caller, Depends(_caller)]


def _current_user(caller: CallerDep, services: ServicesDep) -> User:
    try:
        return services.profiles.get_by_subject(caller.subject)
    except NotFound as exc:
        raise _profile_required() from exc


CurrentUser = Annotated[User, Depends(_current_user)]


def _profile_required() -> ApiError:
    return ApiError(
        404,
        "profile_required",
        "this account has no profile yet: create it with POST /v1/users first",
    )


async def _current_user_id(request: Request, caller: CallerDep, services: ServicesDep) -> int:
    """The caller's user id, from the process's subject cache after the first request (the
    profile lookup, on a miss, is blocking I/O: `run_blocking`)."""
    try:
        return await run_blocking(request, services.profiles.user_id_of, caller.subject)
    except NotFound as exc:
        raise _profile_required() from exc


CurrentUserId = Annotated[int, Depends(_current_user_id)]


def _viewer(caller: CallerDep, services: ServicesDep) -> int | None:
    """The caller's user id for reads that hide what a block hides; None for an account
    without a profile yet, which reads as before: nobody can have blocked it."""
    try:
        return services.profiles.get_by_subject(caller.subject).id
    except NotFound:
        return None


Viewer = Annotated[int | None, Depends(_viewer)]

ID_PATTERN = "^[1-9][0-9]{0,18}$"
_ID_DIGITS = re.compile(ID_PATTERN)


def _plain_digits(value: object) -> object:
    # Lax int parsing would take "+5", "1_000", " 5", "05" and "5.0" as 5: one id, one spelling.
    if isinstance(value, str) and not _ID_DIGITS.fullmatch(value):
        raise ValueError("an id is decimal digits without sign, spaces or a leading zero")
    return value


# Parsed as int, documented as a digit string: a generated JavaScript client would otherwise
# type ids as numbers and round them (2^53 < 2^63).
_Id = Annotated[
    int,
    BeforeValidator(_plain_digits),
    WithJsonSchema({"type": "string", "pattern": ID_PATTERN}),
]
UserId = Annotated[_Id, Path(ge=1, le=MAX_ID, description="User id (decimal string).")]
PostId = Annotated[_Id, Path(ge=1, le=MAX_ID, description="Post id (decimal string).")]
MediaId = Annotated[_Id, Path(ge=1, le=MAX_ID, description="Media id (decimal string).")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_CHARS,
        description="Opaque `next_cursor` from the previous page; omit for the first page.",
    ),
]
Grain = Annotated[
    Literal["hour", "day"], Query(description="Bucket size of the stats: `hour` or `day`.")
]
StatsDays = Annotated[int, Query(ge=1, le=90, description="Window: the last N days (1 to 90).")]
