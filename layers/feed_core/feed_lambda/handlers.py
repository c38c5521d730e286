"""Lambda handlers of each kind, built by the functions' entry modules in one call each: an API
function (HTTP API payload 2.0 -> FastAPI through Mangum), the fan-out worker (SQS batches with
partial failure reporting) and a scheduled job.

FastAPI and Mangum are imported only by `http_handler`: the fan-out worker and the scheduled
jobs do not pay for the web stack at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from .observability import observability

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from fastapi import FastAPI

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def http_handler(app: FastAPI, service: str) -> LambdaHandler:
    """The Lambda handler for an API function: API Gateway HTTP API (payload 2.0) -> `app`."""
    from mangum import Mangum

    obs = observability(service)
    # lifespan off: the app has no startup work, and Mangum would otherwise run the lifespan
    # protocol on every cold start.
    asgi = Mangum(app, lifespan="off")

    @obs.logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
    )
    # Responses hold user content: keep them out of trace metadata (and its 64 KB limit).
    @obs.tracer.capture_lambda_handler(capture_response=False)
    @obs.metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = asgi(event, context)
        status = int(response.get("statusCode", 500))
        # API Gateway counts 4xx/5xx too; this one is per function and costs no extra call.
        obs.metrics.add_metric(name=f"Responses{status // 100}xx", unit=MetricUnit.Count, value=1)
        return response

    return handler


class JobReport(Protocol):
    def to_dict(self) -> dict[str, int | float]: ...


def scheduled_handler(service: str, run: Callable[[dict[str, Any]], JobReport]) -> LambdaHandler:
    """The Lambda handler for a scheduled job (EventBridge schedule, or `make invoke`).

    `run` gets the event (a standard "Scheduled Event", or the schedule's custom Input) and
    returns a report; the report is logged, published as metrics (counts, and `seconds` as the
    job's duration) and returned as the function's result.
    """
    obs = observability(service)

    @obs.logger.inject_lambda_context(clear_state=True)
    @obs.tracer.capture_lambda_handler(capture_response=False)
    @obs.metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        report = run(event if isinstance(event, dict) else {}).to_dict()
        for name, value in report.items():
            unit = MetricUnit.Seconds if name == "seconds" else MetricUnit.Count
            metric = "".join(part.title() for part in name.split("_"))
            obs.metrics.add_metric(name=metric, unit=unit, value=value)
        obs.logger.info(f"{service} finished", extra=report)
        return report

    return handler


def fanout_handler(handle_message: Callable[[Any], None]) -> LambdaHandler:
    """The Lambda handler of the fan-out worker (SQS, ReportBatchItemFailures).

    Each message is one fan-out job (a JSON object) given to `handle_message`. A failing or
    malformed message is reported alone in `batchItemFailures`, so SQS retries only it (and
    moves it to the DLQ after maxReceiveCount); the jobs are idempotent, so a retry never
    duplicates timeline entries.
    """
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    obs = observability("fanout")
    logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics
    # raise_on_entire_batch_failure=False: when every message fails, report them all as
    # failures instead of raising, so SQS still retries message by message.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    @tracer.capture_method(capture_response=False)
    def handle_record(record: SQSRecord) -> None:
        try:
            handle_message(json.loads(record.body))
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

    return handler
