"""Lambda entry point of the fan-out worker (SQS, ReportBatchItemFailures): each message is one
fan-out job, run by the domain's job handler; see feed_lambda.handlers.fanout_handler."""

import os

from feed_lambda.handlers import fanout_handler
from feed_wiring.root import get_services
from feed_wiring.settings import Settings

settings = Settings.from_env(os.environ)
handler = fanout_handler(lambda body: get_services(settings).fanout.handle_message(body))
