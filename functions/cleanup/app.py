"""Lambda entry point of the timeline cleanup job (EventBridge schedule).

Drops the Redis timelines of users inactive beyond ACTIVE_DAYS; their next read rebuilds them.
"""

import os

from feed_api.container import get_services
from feed_api.lambda_entry import scheduled_handler
from newsfeed.settings import Settings

settings = Settings.from_env(os.environ)
handler = scheduled_handler("cleanup", lambda event: get_services(settings).cleanup.run())
