"""SqsFanoutQueue against moto's in-process SQS (no emulator needed)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from feed_adapters.sqs.fanout_queue import SqsFanoutQueue
from newsfeed.errors import QueueUnavailable
from newsfeed.fanout.jobs import PushPost


def test_module_import_does_not_import_boto3() -> None:
    # Cold start: boto3 is only imported when a queue first sends.
    import importlib

    saved = {k: v for k, v in sys.modules.items() if k == "boto3" or k.startswith("boto3.")}
    for k in saved:
        del sys.modules[k]
    try:
        importlib.reload(sys.modules["feed_adapters.sqs.fanout_queue"])
        assert "boto3" not in sys.modules
    finally:
        sys.modules.update(saved)


def test_sends_in_batches_of_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with moto.mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="fanout")["QueueUrl"]
        calls: list[int] = []
        original = client.send_message_batch

        def counting(**kwargs: Any) -> Any:
            calls.append(len(kwargs["Entries"]))
            return original(**kwargs)

        client.send_message_batch = counting  # type: ignore[method-assign]
        queue = SqsFanoutQueue(url, client=client)
        jobs = [PushPost(author_id=1, post_id=i) for i in range(1, 24)]
        queue.send(jobs)
        assert calls == [10, 10, 3]
        bodies = []
        while True:
            got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            bodies += [json.loads(m["Body"]) for m in got]
            for m in got:
                client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        assert sorted(b["post_id"] for b in bodies) == list(range(1, 24))
        assert bodies[0] == {"kind": "fanout", "author_id": 1, "post_id": bodies[0]["post_id"]}


def test_failed_entries_are_retried_then_raise() -> None:
    class Flaky:
        def __init__(self, failures: int) -> None:
            self.failures = failures
            self.sent: list[str] = []

        def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
            if self.failures:
                self.failures -= 1
                return {"Failed": [{"Id": Entries[0]["Id"], "Code": "x", "SenderFault": False}]}
            self.sent += [e["MessageBody"] for e in Entries]
            return {"Successful": []}

    flaky = Flaky(failures=1)
    SqsFanoutQueue("url", client=flaky).send([PushPost(1, 1), PushPost(1, 2)])
    assert len(flaky.sent) == 1  # the first call delivered one, the retry the other failed one
    with pytest.raises(QueueUnavailable):
        SqsFanoutQueue("url", client=Flaky(failures=5), max_attempts=3).send([PushPost(1, 1)])


def test_client_errors_are_queue_unavailable() -> None:
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        def send_message_batch(self, **kwargs: Any) -> dict:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(QueueUnavailable) as caught:
        SqsFanoutQueue("url", client=Unreachable()).send([PushPost(1, 1)])
    assert "127.0.0.1" not in str(caught.value)


def test_after_a_failure_sends_fail_fast_for_a_while() -> None:
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        calls = 0

        def send_message_batch(self, **kwargs: Any) -> dict:
            Unreachable.calls += 1
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    queue = SqsFanoutQueue("url", client=Unreachable())
    for _ in range(3):
        with pytest.raises(QueueUnavailable):
            queue.send([PushPost(1, 1)])
    assert Unreachable.calls == 1  # one timeout paid, then the breaker answers
