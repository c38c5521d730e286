"""Lambda entry point of the timeline cleanup job (EventBridge schedule).

Drops the Redis timelines of users inactive beyond ACTIVE_DAYS (their next read rebuilds them)
and deletes idempotency claims older than 24 hours.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("cleanup")
services = lazy_services(settings, obs.telemetry)
handler = scheduled_handler(obs, lambda event: services().cleanup.run(), settings.pushgateway_url)
