"""Powertools wiring shared by the Lambda entry points: JSON logs, traces, EMF metrics (the
function's own, and the domain's telemetry through `EmfTelemetry`)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.shared import constants as powertools_env
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

from .telemetry import EmfTelemetry

# POWERTOOLS_METRICS_NAMESPACE (template Globals) overrides it, e.g. per stage.
DEFAULT_METRICS_NAMESPACE = "FeedPlatform"
# Only what we call through patchable clients: patching everything (the default) imports every
# supported library at cold start. psycopg 3 and redis-py have no X-Ray patcher.
TRACED_MODULES = ("botocore", "pymongo")
# Our packages log through the standard library; they get the function's JSON output and
# correlation id.
OUR_LOGGERS = ("newsfeed", "feed_adapters", "feed_wiring", "feed_api", "feed_lambda")
# `Metrics` carries only the cold-start metric (the rest is EmfTelemetry's): Powertools would
# warn in every warm invocation's log that it has nothing else to publish.
warnings.filterwarnings("ignore", message="No application metrics to publish")


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
    metrics: Metrics  # the function's own: cold starts
    telemetry: EmfTelemetry  # the domain's catalogue (newsfeed.telemetry), flushed per invocation
    service: str


@cache
def observability(service: str) -> Observability:
    """Logger, Tracer, Metrics and telemetry for one function, made once per process: the entry
    module gives the telemetry to the services and the app, the handler flushes it."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE
    logger = Logger(service=service)
    # Child loggers (newsfeed.feed.reader, ...) propagate to these.
    for name in OUR_LOGGERS:
        logging.getLogger(name)
    copy_config_to_registered_loggers(source_logger=logger, include=set(OUR_LOGGERS))
    return Observability(
        logger=logger,
        tracer=(
            Tracer(service=service, patch_modules=TRACED_MODULES)
            if tracing_enabled()
            else NoTracer()
        ),
        metrics=Metrics(namespace=namespace, service=service),
        telemetry=EmfTelemetry(namespace, service),
        service=service,
    )
