"""The AWS emulator answers on the LocalStack-compatible endpoint and runs SQS for real."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


def test_sqs_queue_round_trip_through_localstack_client(settings, monkeypatch):
    if not settings.aws_endpoint_url:
        pytest.skip("AWS_ENDPOINT_URL is empty: tests do not create queues in real AWS")
    import localstack_client.session

    monkeypatch.setenv("AWS_ENDPOINT_URL", settings.aws_endpoint_url)
    sqs = localstack_client.session.Session(region_name=settings.aws_region).client("sqs")
    assert sqs.meta.endpoint_url.rstrip("/") == settings.aws_endpoint_url.rstrip("/")
    name = f"platform-probe-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=url, MessageBody='{"probe": 1}')
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
        assert [m["Body"] for m in got] == ['{"probe": 1}']
        assert name in " ".join(sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []))
    finally:
        sqs.delete_queue(QueueUrl=url)
