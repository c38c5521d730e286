"""HTTP caching of API responses (issue 13: edge caching).

Every response is `private, no-store` unless its route says otherwise: the feed and everything
per reader must never sit in a shared cache (a CDN, a proxy) or on disk. A post says otherwise:
it carries an ETag of its body and answers a conditional GET (If-None-Match) with 304, and
`private, no-cache` lets a client keep it but revalidate on every use: what a viewer may see
depends on blocks (so no shared cache), and its like count changes (so no max-age).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response

if TYPE_CHECKING:
    from pydantic import BaseModel
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = "private, no-store"
REVALIDATE = "private, no-cache"


class NoStoreByDefault:
    """ASGI middleware: Cache-Control `private, no-store` on every response without one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_default(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", NO_STORE.encode()))
            await send(message)

        await self.app(scope, receive, send_with_default)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match names this ETag (weak comparison, as RFC 9110 asks for it) or is `*`."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def revalidated(request: Request, model: BaseModel, cache_control: str = REVALIDATE) -> Any:
    """`model` as JSON with its ETag, or 304 without a body when the client holds it."""
    body = model.model_dump_json().encode()
    etag = etag_of(body)
    headers = {"etag": etag, "cache-control": cache_control}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
