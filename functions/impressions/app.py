"""Lambda entry point of the impressions drain (EventBridge schedule, every minute).

Moves the impression counts that feed reads keep in Redis (once per reader, post and hour) into
MongoDB for the roll-up, under a lock; returns and logs how many it moved.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_wiring.root import get_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
handler = scheduled_handler("impressions", lambda event: get_services(settings).impressions.run())
