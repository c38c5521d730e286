#!/usr/bin/env python3
"""Run one function's handler locally with a sample event and print its response.

    make invoke FN=feed EVENT=events/feed-home-feed.json
    .venv/bin/python infra/invoke.py prewarm events/prewarm-scheduled.json

What `sam local invoke` does on a machine with Docker, without a container: the function's
module is imported as `functions.<name>.app` once per process (its init, as in a Lambda cold
start; the layer's packages are the installed `feed-core`), the settings come
from the environment like `make up`'s (local stores; fan-out jobs go to FANOUT_QUEUE_URL, or
to the emulator's `feed-fanout` queue, which `make up`'s worker consumes), and the handler
gets the event and a Lambda-like context. Logs go to stderr, the response to stdout as JSON.

HTTP events carry `Authorization: Bearer {{token}}`: the placeholder is replaced by a token
minted with the local key for the event's `sub` claim (requestContext.authorizer.jwt.claims),
which is what the JWT authorizer has already checked when API Gateway calls a function.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from feed_wiring.settings import Settings
from functions import load_app

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
TOKEN_PLACEHOLDER = "{{token}}"
# The function modules this process has initialised, by function name (warm "containers").
_LOADED: dict[str, ModuleType] = {}


class LocalContext:
    """The LambdaContext attributes Powertools reads."""

    memory_limit_in_mb = 512

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def function_names() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))


def local_environment(function: str) -> dict[str, str]:
    """Environment for a local run: the caller's, plus what Lambda and the template would set."""
    from infra.mint_token import ensure_keypair

    env = {
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "FeedPlatformLocal",
        "AWS_LAMBDA_FUNCTION_NAME": function,
    }
    settings = Settings.from_env(os.environ)
    if not (settings.jwt_jwks_url or settings.jwt_public_key_file):
        env["JWT_PUBLIC_KEY_FILE"] = str(ensure_keypair().public_pem)
    if not settings.fanout_queue_url:
        from infra.local_queues import ensure_fanout_queues

        env["FANOUT_QUEUE_URL"], _ = ensure_fanout_queues(settings)
    return env


def with_token(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Replace the `{{token}}` placeholder with a locally minted token for the event's `sub`."""
    headers = event.get("headers") or {}
    auth = headers.get("authorization", "")
    if TOKEN_PLACEHOLDER not in auth:
        return event
    from infra.mint_token import ensure_keypair, mint_token

    authorizer = event.get("requestContext", {}).get("authorizer", {}).get("jwt", {})
    claims = authorizer.get("claims") or {}
    sub = claims.get("sub") or "alice"
    token = mint_token(sub, settings=settings, pair=ensure_keypair())
    event = json.loads(json.dumps(event))  # a copy: the sample file stays a template
    event["headers"]["authorization"] = auth.replace(TOKEN_PLACEHOLDER, token)
    if claims:
        claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
        claims.update(iss=settings.jwt_issuer, aud=settings.jwt_audience)
    return event


def load_function(function: str) -> ModuleType:
    """functions/<function>/app.py, initialised once in this process with the environment of
    its first invoke (the module reads its settings when it runs), like a warm Lambda."""
    if not (FUNCTIONS / function / "app.py").exists():
        raise SystemExit(f"no function {function!r}; one of: {', '.join(function_names())}")
    if function not in _LOADED:
        # Run its init even when this process imported it before (a test, another environment).
        # Only a module whose init succeeded is kept: a failed init is retried on the next
        # invoke, as in Lambda.
        _LOADED[function] = load_app(function)
    return _LOADED[function]


def invoke(function: str, event: dict[str, Any]) -> Any:
    """Run the handler with `event` in this process; the environment must already be set."""
    settings = Settings.from_env(os.environ)
    module = load_function(function)
    return module.handler(with_token(event, settings), LocalContext(function))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help=f"one of: {', '.join(function_names())}")
    parser.add_argument("event", type=Path, help="JSON event file (events/...)")
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text())
    for name, value in local_environment(args.function).items():
        os.environ.setdefault(name, value)
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(name, value)
    # Like `sam local invoke`: the function's logs on stderr, its response alone on stdout.
    with contextlib.redirect_stdout(sys.stderr):
        response = invoke(args.function, event)
    print(json.dumps(response, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
