"""Lambda entry point of the timeline cleanup job (EventBridge schedule).

Drops the Redis timelines of users inactive beyond ACTIVE_DAYS; their next read rebuilds them.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_wiring.root import get_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
handler = scheduled_handler("cleanup", lambda event: get_services(settings).cleanup.run())
