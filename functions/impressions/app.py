"""Lambda entry point of the impressions drain (EventBridge schedule, every minute).

Moves the impression counts that feed reads keep in Redis (once per reader, post and hour) into
MongoDB for the roll-up, under a lock; returns and logs how many it moved.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("impressions")
services = lazy_services(settings, obs.telemetry)
handler = scheduled_handler(
    obs, lambda event: services().impressions.run(), settings.pushgateway_url
)
