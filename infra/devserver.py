#!/usr/bin/env python3
"""Local dev server: every route of the three API functions on one port, with /docs and /redoc.

    .venv/bin/python infra/devserver.py            # http://127.0.0.1:8000/docs
    TOKEN=$(.venv/bin/python infra/mint_token.py --sub alice)

Same app factory and routers as the Lambda functions; the stores come from the usual settings
(POSTGRES_PORT, REDIS_PORT, MONGODB_URL, ...). Tokens are verified with the local key pair from
`mint_token.py` unless JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE says otherwise, and the public key is
served as JWKS at /.well-known/jwks.json (for the emulator's JWT authorizer). Prometheus scrapes
/metrics: the metric catalogue (newsfeed.telemetry) of every request this server handles.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

from feed_adapters.prometheus.telemetry import CONTENT_TYPE_LATEST, PrometheusTelemetry
from feed_api.app import create_app
from feed_api.routers import feed, posts, users
from feed_wiring.root import Services, lazy_services
from feed_wiring.settings import Settings
from infra.mint_token import DEFAULT_KEYS_DIR, ensure_keypair, jwks_document

DEFAULT_PORT = 8000


def local_settings(keys_dir: Path = DEFAULT_KEYS_DIR) -> Settings:
    """Settings from the environment; without a configured key, the local pair from mint_token."""
    settings = Settings.from_env(os.environ)
    if settings.jwt_jwks_url or settings.jwt_public_key_file:
        return settings
    pair = ensure_keypair(keys_dir)
    return dataclasses.replace(settings, jwt_public_key_file=str(pair.public_pem))


def build_app(
    settings: Settings,
    services: Services | None = None,
    telemetry: PrometheusTelemetry | None = None,
) -> FastAPI:
    telemetry = telemetry or PrometheusTelemetry()
    app = create_app(
        settings,
        services if services is not None else lazy_services(settings, telemetry),
        [users.router, posts.router, feed.router],
        title="Feed API (local)",
        telemetry=telemetry,
    )
    public_key_file = settings.jwt_public_key_file

    @app.get(
        "/.well-known/jwks.json",
        tags=["local auth"],
        summary="The local token signing key (JWKS)",
        description="Only on the dev server: the public half of `.state/keys`.",
    )
    def jwks() -> dict[str, Any]:
        if not public_key_file:
            return {"keys": []}
        return jwks_document(Path(public_key_file).read_bytes())

    @app.get(
        "/metrics",
        tags=["monitoring"],
        summary="Prometheus metrics of this server",
        description="Only on the dev server: the text exposition format, for Prometheus.",
        response_class=Response,
    )
    def metrics() -> Response:
        return Response(telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the feed API locally.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    import uvicorn

    settings = local_settings()
    key = settings.jwt_public_key_file or settings.jwt_jwks_url
    print(f"feed API on http://{args.host}:{args.port}/docs (token key: {key})", flush=True)
    uvicorn.run(build_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
