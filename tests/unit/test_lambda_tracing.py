"""Tracing is created only when Powertools would trace: elsewhere a no-op stand-in keeps the X-Ray
SDK (about 300 ms of cold start) out of the process."""

from __future__ import annotations

import pytest
from aws_lambda_powertools import Tracer

from feed_lambda.observability import NoTracer, observability, tracing_enabled

LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task"}


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        (LAMBDA, True),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({**LAMBDA, "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, False),
    ],
)
def test_tracing_follows_powertools_rule(env: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(env) is enabled
    # The same answer as Powertools' own check, in the same environment.
    with pytest.MonkeyPatch.context() as mp:
        for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        assert bool(Tracer._is_tracer_disabled()) is not enabled


def test_no_tracer_decorators_leave_functions_alone() -> None:
    tracer = NoTracer()

    def f(x: int) -> int:
        return x + 1

    assert tracer.capture_lambda_handler(f) is f
    assert tracer.capture_lambda_handler(capture_response=False)(f) is f
    assert tracer.capture_method(f) is f
    assert tracer.capture_method(capture_response=False)(f) is f
    tracer.put_annotation("k", "v")
    tracer.put_metadata("k", {"v": 1})


def test_observability_outside_lambda_has_no_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    assert isinstance(observability("unit").tracer, NoTracer)
