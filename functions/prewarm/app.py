"""Lambda entry point of the cache prewarm job (EventBridge schedule).

Warms the timelines and first-page post caches of recently active users whose first read would
miss Redis; returns and logs how many it checked and warmed and how long it took.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("prewarm")
services = lazy_services(settings, obs.telemetry)
handler = scheduled_handler(obs, lambda event: services().prewarm.run(), settings.pushgateway_url)
