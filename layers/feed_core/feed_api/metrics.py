"""Request duration by route template, method and status (`feed_http_request_duration_seconds`),
measured around the whole app: an ASGI middleware, cheaper than Starlette's BaseHTTPMiddleware
(no task per request, the body streams through untouched)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from newsfeed.telemetry import HTTP_REQUEST_SECONDS, Telemetry

# The route label of requests no route matched (404s, 405s): one value, never the raw path.
UNMATCHED_ROUTE = "unmatched"

Scope = dict[str, Any]


class RequestMetrics:
    def __init__(
        self, app: Any, telemetry: Telemetry, routes: Callable[[], Sequence[Any]] = tuple
    ) -> None:
        self._app = app
        self._telemetry = telemetry
        self._routes = routes
        self._by_endpoint: dict[Any, str] | None = None

    def _route_template(self, scope: Scope) -> str:
        # FastAPI's API routes put themselves in the scope; plain Starlette routes (/docs,
        # /openapi.json) only their endpoint, whose template the app's route table knows.
        route = scope.get("route")
        if route is not None and getattr(route, "path", None):
            return route.path
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED_ROUTE
        if self._by_endpoint is None:
            self._by_endpoint = {
                r.endpoint: r.path for r in self._routes() if getattr(r, "endpoint", None)
            }
        return self._by_endpoint.get(endpoint, UNMATCHED_ROUTE)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response: an exception escaped it

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        finally:
            self._telemetry.observe(
                HTTP_REQUEST_SECONDS,
                time.perf_counter() - started,
                route=self._route_template(scope),
                method=scope["method"],
                status=str(status),
            )
