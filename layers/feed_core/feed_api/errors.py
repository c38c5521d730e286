"""One error shape for every failure: `{"error": {"code": ..., "message": ...}}`.

Domain exceptions carry the meaning (not found, forbidden, ...); this module only decides the
status code and the JSON. Unknown exceptions become a 500 without leaking their text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsfeed import errors as domain

log = logging.getLogger(__name__)

# Most specific first: isinstance() picks the first match, so a subclass must precede its base.
DOMAIN_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (domain.InvalidInput, 400, "invalid_input"),
    (domain.NotFound, 404, "not_found"),
    (domain.Forbidden, 403, "forbidden"),
    (domain.Conflict, 409, "conflict"),
    (domain.DuplicateId, 409, "conflict"),
    (domain.Unavailable, 503, "unavailable"),
    # Any other error a caller can act on (a subclass added later) is still the caller's: 400.
    (domain.DomainError, 400, "invalid_input"),
)

# Codes for errors Starlette raises itself (unknown route, wrong method, ...).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="Human-readable explanation; may change between releases.")


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx response."""

    error: ErrorDetail


class ApiError(Exception):
    """An HTTP-level failure raised by the HTTP layer itself (auth, missing profile, ...)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def domain_status(exc: Exception) -> tuple[int, str] | None:
    """Status and default code for a domain exception, or None if it is not one."""
    for exc_type, status, code in DOMAIN_STATUS:
        if isinstance(exc, exc_type):
            # A domain exception may carry a more precise code (e.g. `handle_taken`).
            return status, getattr(exc, "code", None) or code
    return None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        # loc is like ("query", "limit") or ("body", "text"); drop the "body" noise for humans.
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


# Seconds a client should wait before retrying a 503: store failovers and restarts take seconds.
RETRY_AFTER_SECONDS = 1


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    mapped = domain_status(exc)
    assert mapped is not None  # only registered for domain types
    status, code = mapped
    headers = None
    if status == 503:
        # The cause (which store, the driver's error) goes to the log, not to the client.
        log.warning("503 on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return error_response(status, code, str(exc) or code.replace("_", " "), headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", _validation_message(exc))


def route_methods(routers: Sequence[APIRouter]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every route, kept for 405 answers (see `_allowed_methods`)."""
    return [
        (route.path_regex, frozenset(route.methods))
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


def _allowed_methods(request: Request) -> set[str]:
    """Every method served at this request's path, by any route."""
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    allowed: set[str] = set()
    for regex, methods in getattr(request.app.state, "route_methods", ()):
        if regex.match(path):
            allowed |= methods
    return allowed


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        # The router names only the first route that matched the path; GET and DELETE
        # /v1/posts/{post_id} are two routes, and Allow must list both.
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    return error_response(exc.status_code, code, message, headers or None)


class UnexpectedErrorMiddleware:
    """Turns any other exception into the JSON 500, logged once.

    A handler registered for `Exception` would run in Starlette's ServerErrorMiddleware, which
    re-raises after responding, so Mangum (or uvicorn) would log the same error a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            # The traceback goes to the log (with the correlation id), never to the client.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for a clean error response: let the server abort it
                raise
            await error_response(500, "internal", "internal error")(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, _, _ in DOMAIN_STATUS:
        app.add_exception_handler(exc_type, _on_domain_error)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_middleware(UnexpectedErrorMiddleware)


_DESCRIPTIONS = {
    400: "Invalid input (bad cursor, text too long, following yourself, ...).",
    401: "Missing, expired or invalid bearer token.",
    403: "Not allowed (not the author, blocked, ...).",
    404: "Unknown id, or the caller has no profile yet.",
    409: "Conflict (handle taken, profile exists, idempotency key reused for another post or "
    "its post deleted).",
    422: "The request does not match the schema (types, ranges).",
    503: "A store or the queue is unavailable, or failed part-way; safe to retry after "
    "`Retry-After` seconds (with the same Idempotency-Key for a post).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error body for these statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status == 503:
            out[status]["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                }
            }
    return out
