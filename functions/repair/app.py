"""Lambda entry point of the repair job (EventBridge schedule).

Queues again the fan-out or retract job of every post still pending delivery or retraction
minutes after it was written (its own job was lost: the queue was down, or the job died);
returns and logs how many it repaired.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_wiring.root import get_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
handler = scheduled_handler("repair", lambda event: get_services(settings).repair.run())
