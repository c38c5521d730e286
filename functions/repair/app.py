"""Lambda entry point of the repair job (EventBridge schedule).

Queues again the fan-out or retract job of every post still pending delivery or retraction
minutes after it was written (its own job was lost: the queue was down, or the job died);
returns and logs how many it repaired.
"""

import os

from feed_lambda.handlers import scheduled_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("repair")
services = lazy_services(settings, obs.telemetry)
handler = scheduled_handler(obs, lambda event: services().repair.run(), settings.pushgateway_url)
