"""Lambda handlers of each kind, built by the functions' entry modules in one call each: an API
function (HTTP API payload 2.0 -> FastAPI through Mangum), the fan-out worker (SQS batches with
partial failure reporting) and a scheduled job.

FastAPI and Mangum are imported only by `http_handler`: the fan-out worker and the scheduled
jobs do not pay for the web stack at cold start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.logging import correlation_paths

from newsfeed.telemetry import JOB_DURATION_SECONDS, JOB_ITEMS, JOB_LAST_SUCCESS

from .observability import Observability

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from fastapi import FastAPI

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def http_handler(app: FastAPI, obs: Observability) -> LambdaHandler:
    """The Lambda handler for an API function: API Gateway HTTP API (payload 2.0) -> `app`.
    The app measures each request (`feed_api.metrics`) into `obs.telemetry`, flushed here."""
    from mangum import Mangum

    # lifespan off: the app has no startup work, and Mangum would otherwise run the lifespan
    # protocol on every cold start.
    asgi = Mangum(app, lifespan="off")
    # A Lambda process serves one request at a time: blocking domain calls run in the event
    # loop's thread (feed_api.deps.run_blocking), not through a worker thread.
    app.state.inline_blocking = True

    @obs.logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
    )
    # Responses hold user content: keep them out of trace metadata (and its 64 KB limit).
    @obs.tracer.capture_lambda_handler(capture_response=False)
    @obs.metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return asgi(event, context)
        finally:
            obs.telemetry.flush()

    return handler


class JobReport(Protocol):
    def to_dict(self) -> dict[str, int | float]: ...


def scheduled_handler(
    obs: Observability,
    run: Callable[[dict[str, Any]], JobReport],
    pushgateway_url: str | None = None,
) -> LambdaHandler:
    """The Lambda handler for a scheduled job (EventBridge schedule, or `make invoke`).

    `run` gets the event (a standard "Scheduled Event", or the schedule's custom Input) and
    returns a report; the report is logged and returned as the function's result. The run's
    duration, its success time and the report's counts are published as the catalogue's job
    metrics (EMF), and pushed to the Pushgateway at `pushgateway_url` when one is configured
    (locally: a batch job is over before Prometheus could scrape it).
    """
    service = obs.service

    def publish(seconds: float, report: dict[str, int | float] | None) -> None:
        obs.telemetry.set(JOB_DURATION_SECONDS, seconds, job=service)
        if report is not None:
            obs.telemetry.set(JOB_LAST_SUCCESS, time.time(), job=service)
            for item, value in report.items():
                if item != "seconds":
                    obs.telemetry.set(JOB_ITEMS, value, job=service, item=item)
        obs.telemetry.flush()
        if pushgateway_url:
            from feed_adapters.prometheus.pushgateway import push_job_run

            push_job_run(
                pushgateway_url,
                service,
                seconds,
                time.time(),
                report or {},
                succeeded=report is not None,
            )

    @obs.logger.inject_lambda_context(clear_state=True)
    @obs.tracer.capture_lambda_handler(capture_response=False)
    @obs.metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            report = run(event if isinstance(event, dict) else {}).to_dict()
        except Exception:
            publish(time.perf_counter() - started, None)
            raise
        publish(time.perf_counter() - started, report)
        obs.logger.info(f"{service} finished", extra=report)
        return report

    return handler


def fanout_handler(handle_message: Callable[[Any], None], obs: Observability) -> LambdaHandler:
    """The Lambda handler of the fan-out worker (SQS, ReportBatchItemFailures).

    Each message is one fan-out job (a JSON object) given to `handle_message`. A failing or
    malformed message is reported alone in `batchItemFailures`, so SQS retries only it (and
    moves it to the DLQ after maxReceiveCount); the jobs are idempotent, so a retry never
    duplicates timeline entries. The job handler measures each job into `obs.telemetry`
    (done/failed by kind, fan-out lag, timelines written), flushed after each batch.
    """
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

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
            raise

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return process_partial_response(
                event=event, record_handler=handle_record, processor=processor, context=context
            )
        finally:
            obs.telemetry.flush()

    return handler


def upload_handler(process_upload: Callable[[str], str], obs: Observability) -> LambdaHandler:
    """The Lambda handler of the media function (S3 ObjectCreated on `uploads/`, invoked
    asynchronously). Each record's object key is given to `process_upload`, which returns its
    outcome (ready, failed, ignored). Processing is idempotent, so a failing record (a store or
    the bucket down) fails the invocation after the others ran: Lambda retries the event, and
    the records done are ignored the second time."""
    from urllib.parse import unquote_plus

    logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        failure: Exception | None = None
        try:
            for record in event.get("Records") or ():
                # S3's keys arrive URL-encoded, spaces as "+".
                key = unquote_plus(((record.get("s3") or {}).get("object") or {}).get("key", ""))
                if not key:
                    continue  # s3:TestEvent and other records without an object
                try:
                    outcome = process_upload(key)
                except Exception as exc:
                    logger.exception("upload not processed", extra={"key": key})
                    failure = failure or exc
                    outcome = "error"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                logger.info("upload processed", extra={"key": key, "outcome": outcome})
        finally:
            obs.telemetry.flush()
        if failure is not None:
            raise failure
        return {"outcomes": outcomes}

    return handler
