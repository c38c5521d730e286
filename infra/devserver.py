#!/usr/bin/env python3
"""Local dev server: every route of the three API functions on one port, with /docs and /redoc.

    .venv/bin/python infra/devserver.py            # http://127.0.0.1:8000/docs
    .venv/bin/python infra/devserver.py --port 18100 --workers 2 --reuse-port --no-access-log
    TOKEN=$(.venv/bin/python infra/mint_token.py --sub alice)

Same app factory and routers as the Lambda functions; the stores come from the usual settings
(POSTGRES_PORT, REDIS_PORT, MONGODB_URL, ...). Tokens are verified with the local key pair from
`mint_token.py` unless JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE says otherwise, and the public key is
served as JWKS at /.well-known/jwks.json (for the emulator's JWT authorizer). Prometheus scrapes
/metrics: the metric catalogue (newsfeed.telemetry) of every request this server handles.

`--workers N` (N > 1) runs N server processes, each with its own app, store clients and
per-process caches (/metrics then shows the process that answered the scrape only): uvicorn's
workers, which accept on one shared socket (whichever is awake first takes the waiting
connections, so a burst of keep-alive connections can all land on one worker), or with
`--reuse-port` N processes of this script, each listening on its own SO_REUSEPORT socket (the
kernel spreads connections over them by a hash of their addresses). `make up` runs one
process; the HTTP benchmark (bench/http_read.py) runs several.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

from feed_adapters.prometheus.telemetry import CONTENT_TYPE_LATEST, PrometheusTelemetry
from feed_api.app import create_app
from feed_api.routers import feed, media, posts, users
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
        [users.router, posts.router, media.router, feed.router],
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


def app_from_env() -> FastAPI:
    """The app for one uvicorn worker process (`--workers`): settings from the environment."""
    return build_app(local_settings())


def listen_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket for uvicorn, created with proto IPPROTO_TCP: asyncio sets TCP_NODELAY
    on the connections it accepts only when their proto says TCP, and they inherit it from the
    listener. uvicorn's own bind for `--workers` leaves proto 0 (uvicorn issue 3149), so Nagle
    stays on and every keep-alive response after the first waits about 40 ms for the client's
    delayed ACK (measured here: 48 ms per feed read at any concurrency, 4 ms with one process)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)  # uvicorn's workers get it by inheritance
    return sock


def run_processes(args: argparse.Namespace) -> int:
    """`--workers N --reuse-port`: N single-process servers of this script on the same port;
    a SIGTERM or SIGINT is passed on to each. Returns when all have exited."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--host", args.host]
    cmd += ["--port", str(args.port), "--reuse-port"]
    cmd += ["--no-access-log"] if args.no_access_log else []
    procs = [subprocess.Popen(cmd) for _ in range(args.workers)]

    def stop(signum: int, frame: object) -> None:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return max(proc.wait() for proc in procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the feed API locally.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (default 1: this one)"
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="listen on an SO_REUSEPORT socket; with --workers N: N processes of this script",
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="no log line per request (benchmarks)"
    )
    args = parser.parse_args(argv)
    import uvicorn

    # Also creates the local key pair, if missing, before any worker starts.
    settings = local_settings()
    key = settings.jwt_public_key_file or settings.jwt_jwks_url
    print(
        f"feed API on http://{args.host}:{args.port}/docs (token key: {key}, "
        f"{args.workers} worker{'s' if args.workers > 1 else ''}"
        f"{', SO_REUSEPORT' if args.reuse_port else ''})",
        flush=True,
    )
    if args.reuse_port and args.workers > 1:
        return run_processes(args)
    common = {"host": args.host, "port": args.port, "log_level": "info"}
    common["access_log"] = not args.no_access_log
    if args.reuse_port:
        server = uvicorn.Server(uvicorn.Config(build_app(settings), **common))
        server.run(sockets=[listen_socket(args.host, args.port, reuse_port=True)])
    elif args.workers > 1:
        from uvicorn.supervisors import Multiprocess

        # What uvicorn.run does for workers, on a socket of ours (listen_socket). Workers import
        # the app by name: this module as `infra.devserver`, each building its own app.
        config = uvicorn.Config(
            "infra.devserver:app_from_env", factory=True, workers=args.workers, **common
        )
        Multiprocess(config, sockets=[listen_socket(args.host, args.port)]).run()
    else:
        uvicorn.run(build_app(settings), **common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
