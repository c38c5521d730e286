#!/usr/bin/env python3
"""Write the HTTP API's OpenAPI description to docs/openapi.json (from the code, never by hand).

    .venv/bin/python infra/export_openapi.py [--check]

The document is the public API of the three API functions (posts, social, feed) together, as
the dev server and the API Gateway HTTP API expose them. `--check` exits 1 when the committed
file differs from what the code produces; the test suite runs that check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_FILE = ROOT / "docs" / "openapi.json"


def current_openapi() -> str:
    from feed_api.app import create_app
    from feed_api.routers import feed, media, posts, users
    from feed_wiring.settings import Settings

    def no_services():  # the document needs no store
        raise RuntimeError("not used to build the OpenAPI document")

    # The verifier needs a key source to be built; nothing is fetched to describe the API.
    settings = Settings(jwt_jwks_url="https://auth.example/.well-known/jwks.json")
    app = create_app(settings, no_services, [users.router, posts.router, media.router, feed.router])
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    doc = current_openapi()
    if args.check:
        if not OPENAPI_FILE.exists() or OPENAPI_FILE.read_text() != doc:
            print(f"{OPENAPI_FILE} is stale: run .venv/bin/python infra/export_openapi.py")
            return 1
        return 0
    OPENAPI_FILE.write_text(doc)
    print(f"wrote {OPENAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
