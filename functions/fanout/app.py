"""Lambda entry point of the fan-out worker (SQS, ReportBatchItemFailures).

Each message is one fan-out job (JSON object). A failing message is reported alone in
`batchItemFailures`, so SQS retries only it (and moves it to the DLQ after maxReceiveCount);
the jobs are idempotent, so a retry never duplicates timeline entries.
"""

import json
import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from feed_api.container import get_services
from feed_api.lambda_entry import observability
from newsfeed.settings import Settings

settings = Settings.from_env(os.environ)
obs = observability("fanout")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics
# raise_on_entire_batch_failure=False: when every message fails, report them all as failures
# instead of raising, so SQS still retries message by message and the worker is not restarted.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method(capture_response=False)
def handle_record(record: SQSRecord) -> None:
    try:
        job = json.loads(record.body)
        get_services(settings).fanout.handle(job)
    except Exception:
        logger.exception("fan-out job failed", extra={"message_id": record.message_id})
        metrics.add_metric(name="FanoutJobsFailed", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="FanoutJobsDone", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )
