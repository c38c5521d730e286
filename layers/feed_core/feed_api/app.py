"""The app factory shared by the API functions and the local dev server."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from feed_api.auth import TokenVerifier
from feed_api.caching import NoStoreByDefault
from feed_api.errors import install_error_handlers, route_methods
from feed_api.metrics import RequestMetrics
from feed_wiring.root import Services, ServicesProvider
from feed_wiring.settings import Settings
from newsfeed.telemetry import NO_TELEMETRY, Telemetry

API_VERSION = "1.0.0"

DESCRIPTION = """
Home timelines for a social product: profiles, follows, posts, likes and the home feed.

* **Auth**: every endpoint needs `Authorization: Bearer <JWT>` (RS256). The token's `sub` is the
  caller; no endpoint takes a user id to act as someone else. Create your profile with
  `POST /v1/users` before using the rest.
* **Ids** are 64-bit and sent as decimal strings.
* **Paging**: `limit` (1-100, default 20) and the opaque `cursor` from the previous page's
  `next_cursor`.
* **Errors**: `{"error": {"code": "not_found", "message": "..."}}`.
* **Caching**: responses are `Cache-Control: private, no-store`, but a post's: it has an `ETag`
  and `private, no-cache`; send `If-None-Match` to get `304 Not Modified` while it is unchanged.
"""

TAGS = [
    {"name": "users", "description": "Profiles; the caller's is tied to the token's `sub`."},
    {"name": "social graph", "description": "Follow, block and mute; followers and following."},
    {"name": "posts", "description": "Publish, read, delete and like posts."},
    {"name": "feed", "description": "The caller's home timeline."},
    {"name": "media", "description": "Uploads straight to storage: an upload target, then state."},
]


def create_app(
    settings: Settings,
    services: Services | ServicesProvider,
    routers: Sequence[APIRouter],
    *,
    title: str = "Feed API",
    verifier: TokenVerifier | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> FastAPI:
    """An app serving `routers`.

    `services` is either ready-made (tests) or a provider called per request that returns the
    process-wide instance (`feed_wiring.root.lazy_services`), so the app can be built at import time
    without connecting to anything. Every request's duration is measured into `telemetry`.
    """
    app = FastAPI(
        title=title,
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.settings = settings
    app.state.services = services if callable(services) else lambda: services
    app.state.verifier = verifier or TokenVerifier.from_settings(settings)
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    # For the Allow header of a 405: every method of a path, across the routes serving it.
    app.state.route_methods = route_methods(routers)
    if telemetry is not NO_TELEMETRY:
        app.add_middleware(RequestMetrics, telemetry=telemetry, routes=lambda: app.routes)
    # Nothing per reader in a shared cache: routes that may be cached say so (caching.py).
    app.add_middleware(NoStoreByDefault)
    return app
