"""Lambda entry point of the fan-out worker (SQS, ReportBatchItemFailures): each message is one
fan-out job, run by the domain's job handler; see feed_lambda.handlers.fanout_handler."""

import os

from feed_lambda.handlers import fanout_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("fanout")
services = lazy_services(settings, obs.telemetry)
handler = fanout_handler(lambda body: services().fanout.handle_message(body), obs)
