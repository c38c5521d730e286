"""Powertools wiring shared by the Lambda entry points: JSON logs, traces, EMF metrics.

FastAPI and Mangum are imported only by `http_handler`: the fan-out worker uses `observability`
alone and should not pay for the web stack at cold start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared import constants as powertools_env
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

if TYPE_CHECKING:
    from fastapi import FastAPI

# POWERTOOLS_METRICS_NAMESPACE (template Globals) overrides it, e.g. per stage.
DEFAULT_METRICS_NAMESPACE = "FeedPlatform"
# Only what we call through patchable clients: patching everything (the default) imports every
# supported library at cold start. psycopg 3 and redis-py have no X-Ray patcher.
TRACED_MODULES = ("botocore", "pymongo")

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class NoTracer:
    """Stands in for Powertools' `Tracer` when tracing is off: the same decorators, doing nothing.

    Creating a `Tracer`, even a disabled one, imports the X-Ray SDK, whose recorder builds a
    botocore session at import: about 300 ms of every cold start (bench/, docs/benchmarks.md).
    """

    def capture_lambda_handler(
        self, lambda_handler: Callable | None = None, **_options: Any
    ) -> Callable:
        return lambda_handler if lambda_handler is not None else (lambda f: f)

    def capture_method(self, method: Callable | None = None, **_options: Any) -> Callable:
        return method if method is not None else (lambda f: f)

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Powertools' own rule (`Tracer._is_tracer_disabled`): off when POWERTOOLS_TRACE_DISABLED is
    truthy, and outside Lambda (no LAMBDA_TASK_ROOT) or under SAM local / Chalice local."""
    disabled = env.get(powertools_env.TRACER_DISABLED_ENV, "false")
    if resolve_truthy_env_var_choice(env=disabled):
        return False
    return bool(env.get(powertools_env.LAMBDA_TASK_ROOT_ENV)) and not (
        env.get(powertools_env.SAM_LOCAL_ENV) or env.get(powertools_env.CHALICE_LOCAL_ENV)
    )


@dataclass(frozen=True, slots=True)
class Observability:
    logger: Logger
    tracer: Tracer | NoTracer
    metrics: Metrics


def observability(service: str) -> Observability:
    """Logger, Tracer and Metrics for one function; call once, at module level."""
    logger = Logger(service=service)
    # Our packages log through the standard library; give them the same JSON output and
    # correlation id. Child loggers (newsfeed.services, ...) propagate to these two.
    for name in ("feed_api", "newsfeed"):
        logging.getLogger(name)
    copy_config_to_registered_loggers(source_logger=logger, include={"feed_api", "newsfeed"})
    return Observability(
        logger=logger,
        tracer=(
            Tracer(service=service, patch_modules=TRACED_MODULES)
            if tracing_enabled()
            else NoTracer()
        ),
        metrics=Metrics(
            namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE,
            service=service,
        ),
    )


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
