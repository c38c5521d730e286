"""functions/fanout/app.handler without stores: partial batch failure reporting."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from functions import load_app
from newsfeed.errors import StoreUnavailable
from newsfeed.fanout.jobs import BackfillAuthor, PushPost, RetractPost, parse_job

ROOT = Path(__file__).resolve().parents[2]


class Context:
    function_name = "fanout"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fanout"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class FakeFanout:
    """The job handler's parsing, without its stores: a malformed job fails as in production."""

    def __init__(self) -> None:
        self.handled: list[Any] = []

    def handle_message(self, body: Any) -> None:
        if isinstance(body, dict) and body.get("explode"):
            raise StoreUnavailable()
        self.handled.append(parse_job(body))


@pytest.fixture
def fanout(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, FakeFanout]:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "FeedPlatformTest")
    module = load_app("fanout")
    fake = FakeFanout()
    monkeypatch.setattr(module, "services", lambda: SimpleNamespace(fanout=fake))
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
            json.dumps({"kind": "fanout", "author_id": 7, "post_id": 1}),
            "{not json",
            json.dumps({"explode": True}),
            json.dumps({"kind": "fanout", "author_id": 7, "post_id": "2"}),  # malformed
            json.dumps({"kind": "retract", "author_id": 7, "post_id": 3}),
        ),
        Context(),
    )
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": "m1"},
            {"itemIdentifier": "m2"},
            {"itemIdentifier": "m3"},
        ]
    }
    assert fake.handled == [PushPost(7, 1), RetractPost(7, 3)]


def test_whole_batch_failing_is_reported_not_raised(fanout: tuple[ModuleType, FakeFanout]) -> None:
    module, _ = fanout
    result = module.handler(event("x", "y"), Context())
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == ["m0", "m1"]


def test_all_good(fanout: tuple[ModuleType, FakeFanout]) -> None:
    module, fake = fanout
    good = json.dumps({"kind": "backfill_author", "author_id": 7, "job_id": "ab"})
    assert module.handler(event(good, good), Context()) == {"batchItemFailures": []}
    assert fake.handled == [BackfillAuthor(7, "ab"), BackfillAuthor(7, "ab")]
