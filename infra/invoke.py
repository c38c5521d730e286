#!/usr/bin/env python3
"""Run one function's handler locally with a sample event and print its response.

    make invoke FN=feed EVENT=events/feed-home-feed.json
    .venv/bin/python infra/invoke.py prewarm events/prewarm-scheduled.json

What `sam local invoke` does on a machine with Docker, without a container: the function's
folder and the layer's source go on `sys.path` (in that order, as in Lambda), the settings come
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
import importlib.util
import json
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "feed_core"
FUNCTIONS = ROOT / "functions"
TOKEN_PLACEHOLDER = "{{token}}"
sys.path.insert(0, str(LAYER))
sys.path.insert(0, str(ROOT / "infra"))

from feed_wiring.settings import Settings  # noqa: E402


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
    from mint_token import ensure_keypair

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
        from local_queues import ensure_fanout_queues

        env["FANOUT_QUEUE_URL"], _ = ensure_fanout_queues(settings)
    return env


def with_token(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Replace the `{{token}}` placeholder with a locally minted token for the event's `sub`."""
    headers = event.get("headers") or {}
    auth = headers.get("authorization", "")
    if TOKEN_PLACEHOLDER not in auth:
        return event
    from mint_token import ensure_keypair, mint_token

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
    """functions/<function>/app.py as Lambda imports it (its folder first on the path)."""
    folder = FUNCTIONS / function
    if not (folder / "app.py").exists():
        raise SystemExit(f"no function {function!r}; one of: {', '.join(function_names())}")
    name = f"feed_function_{function}"
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a failed init is retried on the next invoke, as in Lambda
        raise
    return module


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
