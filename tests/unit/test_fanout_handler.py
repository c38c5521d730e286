"""functions/fanout/app.handler without stores: partial batch failure reporting."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from functions import load_app

ROOT = Path(__file__).resolve().parents[2]


class Context:
    function_name = "fanout"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fanout"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class FakeFanout:
    def __init__(self) -> None:
        self.handled: list[dict[str, Any]] = []

    def handle(self, job: dict[str, Any]) -> None:
        if job.get("explode"):
            raise RuntimeError("store down")
        self.handled.append(job)


@pytest.fixture
def fanout(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, FakeFanout]:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "FeedPlatformTest")
    module = load_app("fanout")
    fake = FakeFanout()
    monkeypatch.setattr(module, "get_services", lambda settings: SimpleNamespace(fanout=fake))
    return module, fake


def event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:feed-fanout",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_only_failed_messages_are_reported(fanout: tuple[ModuleType, FakeFanout]) -> None:
    module, fake = fanout
    result = module.handler(
        event(
            json.dumps({"kind": "fanout", "n": 1}),
            "{not json",
            json.dumps({"explode": True}),
            json.dumps({"kind": "fanout", "n": 2}),
        ),
        Context(),
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert [j["n"] for j in fake.handled] == [1, 2]


def test_whole_batch_failing_is_reported_not_raised(fanout: tuple[ModuleType, FakeFanout]) -> None:
    module, _ = fanout
    result = module.handler(event("x", "y"), Context())
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == ["m0", "m1"]


def test_all_good(fanout: tuple[ModuleType, FakeFanout]) -> None:
    module, fake = fanout
    assert module.handler(event("{}", "{}"), Context()) == {"batchItemFailures": []}
    assert fake.handled == [{}, {}]
