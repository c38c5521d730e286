"""Lambda entry point of the `posts` API function (API Gateway HTTP API, payload 2.0)."""

import os

from feed_api.app import create_app
from feed_api.routers import media, posts
from feed_lambda.handlers import http_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("posts")
app = create_app(
    settings,
    lazy_services(settings, obs.telemetry),
    [posts.router, media.router],
    title="Feed API: posts",
    telemetry=obs.telemetry,
)
handler = http_handler(app, obs)
