"""Lambda entry point of the cache prewarm job (EventBridge schedule).

Warms the timelines and first-page post caches of recently active users whose first read would
miss Redis; returns and logs how many it checked and warmed and how long it took.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_wiring.root import get_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
handler = scheduled_handler("prewarm", lambda event: get_services(settings).prewarm.run())
