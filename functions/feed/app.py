"""Lambda entry point of the `feed` API function (API Gateway HTTP API, payload 2.0)."""

import os

from feed_api.app import create_app
from feed_api.routers import feed
from feed_lambda.handlers import http_handler
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
app = create_app(settings, lazy_services(settings), [feed.router], title="Feed API: home feed")
handler = http_handler(app, service="feed")
