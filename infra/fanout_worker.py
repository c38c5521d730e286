#!/usr/bin/env python3
"""Local stand-in for the SQS event source mapping: feeds queue batches to the fan-out handler.

    python infra/fanout_worker.py [--once]

It also processes the dev server's uploads: the dev media bucket notifies a queue
(infra/local_media.py), and each event is handed to `functions/media/app.handler`, as S3
invokes the media function in AWS (`drain_uploads_once`).

It long-polls the fan-out queue in the AWS emulator, hands each batch to
`functions/fanout/app.handler` as an SQS event (the same shape Lambda delivers), deletes the
messages the handler did not report in `batchItemFailures`, and leaves the failed ones to come
back after their visibility timeout, so the queue's redrive policy moves poison messages to the
dead-letter queue exactly as in AWS. Once the SAM stack is deployed to the emulator, the real
event source mapping does this job instead.

Its services measure into Prometheus (not EMF), served at 127.0.0.1:$FANOUT_WORKER_METRICS_PORT
(default 9102) /metrics, with what only a consumer sees: the depth of the queue and its
dead-letter queue, the age of the oldest message, and the engagement buffer's length. On AWS
those come from CloudWatch's own SQS metrics (ApproximateAgeOfOldestMessage, ...).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from types import ModuleType

from feed_adapters.prometheus.telemetry import PrometheusTelemetry
from feed_wiring.root import build_services, use_services
from feed_wiring.settings import Settings
from infra.local_queues import ensure_fanout_queues, sqs_client
from newsfeed.telemetry import (
    ENGAGEMENT_BUFFER_LENGTH,
    QUEUE_MESSAGES,
    QUEUE_OLDEST_AGE_SECONDS,
    Telemetry,
)

BATCH_SIZE = 10
DEFAULT_METRICS_PORT = 9102
MONITOR_INTERVAL_SECONDS = 2.0
# GetQueueAttributes names -> the `state` label of feed_queue_messages.
QUEUE_STATES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


def load_fanout_handler() -> ModuleType:
    return importlib.import_module("functions.fanout.app")


class LocalContext:
    """The few LambdaContext attributes Powertools reads."""

    function_name = "fanout-local"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:fanout-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def to_sqs_event(messages: list[dict], queue_arn: str, region: str) -> dict:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueueMonitor:
    """Sets the queue gauges: depth by state from GetQueueAttributes; the oldest message's age
    from what the consumer receives (SQS has no attribute for it; the DLQ, which nothing
    consumes, is peeked without hiding its messages)."""

    def __init__(self, sqs, telemetry: Telemetry, queues: dict[str, str]) -> None:
        self._sqs = sqs
        self._telemetry = telemetry
        self._queues = queues  # label -> URL
        self._oldest_sent_ms: float | None = None

    def received(self, messages: list[dict]) -> None:
        sent = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
        self._oldest_sent_ms = min((s for s in sent if s), default=None)

    def sample(self) -> None:
        for label, url in self._queues.items():
            attrs = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_STATES))[
                "Attributes"
            ]
            depth = 0
            for name, state in QUEUE_STATES.items():
                n = int(attrs.get(name, 0))
                depth += n
                self._telemetry.set(QUEUE_MESSAGES, n, queue=label, state=state)
            age = self._oldest_age(label, url, depth)
            self._telemetry.set(QUEUE_OLDEST_AGE_SECONDS, age, queue=label)

    def _oldest_age(self, label: str, url: str, depth: int) -> float:
        if depth == 0:
            return 0.0
        if label == "fanout":
            oldest = self._oldest_sent_ms
        else:
            peeked = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                AttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            oldest = min((int(m["Attributes"]["SentTimestamp"]) for m in peeked), default=None)
        return max(0.0, time.time() - oldest / 1000) if oldest else 0.0


def run_every(interval: float, step: Callable[[], None], stopping: threading.Event) -> None:
    """`step` every `interval` seconds until `stopping`; a failing step is reported, not fatal."""
    while not stopping.wait(interval):
        try:
            step()
        except Exception as exc:
            print(f"[fanout-worker] monitoring step failed: {exc!r}", flush=True)


def drain_once(
    sqs,
    handler,
    queue_url: str,
    queue_arn: str,
    region: str,
    wait_seconds: int = 1,
    monitor: QueueMonitor | None = None,
) -> int:
    """Deliver one batch; returns how many messages it received."""
    got = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=BATCH_SIZE,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
    )
    messages = got.get("Messages", [])
    if monitor is not None:
        monitor.received(messages)
    if not messages:
        return 0
    result = handler(to_sqs_event(messages, queue_arn, region), LocalContext()) or {}
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    done = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
        for i, m in enumerate(messages)
        if m["MessageId"] not in failed
    ]
    if done:
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)
    return len(messages)


def load_media_handler() -> ModuleType:
    return importlib.import_module("functions.media.app")


def drain_uploads_once(sqs, handler, queue_url: str, wait_seconds: int = 1) -> int:
    """Hand each S3 event on the upload queue to the media handler; a message whose handling
    raised stays, to come back after its visibility timeout (then the dead-letter queue, as
    Lambda's retries end in AWS). Returns how many messages it received."""
    got = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=BATCH_SIZE, WaitTimeSeconds=wait_seconds
    )
    messages = got.get("Messages", [])
    for message in messages:
        try:
            handler(json.loads(message["Body"]), LocalContext())
        except Exception as exc:
            print(f"[fanout-worker] upload not processed: {exc!r}", flush=True)
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def consume_uploads(sqs, queue_url: str, stopping: threading.Event) -> None:
    handler = load_media_handler().handler
    print(f"[fanout-worker] processing uploads from {queue_url}", flush=True)
    while not stopping.is_set():
        try:
            drain_uploads_once(sqs, handler, queue_url)
        except Exception as exc:
            print(f"[fanout-worker] upload poll failed: {exc!r}", flush=True)
            time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="drain what is queued, then exit")
    args = parser.parse_args()
    settings = Settings.from_env(os.environ)
    queue_url, dlq_url = ensure_fanout_queues(settings)
    sqs = sqs_client(settings)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # The handler's module gets these services (same settings): they measure into Prometheus.
    telemetry = PrometheusTelemetry()
    services = build_services(settings, telemetry=telemetry)
    use_services(settings, services)
    handler = load_fanout_handler().handler
    stopping = threading.Event()
    monitor = QueueMonitor(sqs, telemetry, {"fanout": queue_url, "dlq": dlq_url})
    if not args.once:
        from prometheus_client import start_http_server

        port = int(os.environ.get("FANOUT_WORKER_METRICS_PORT", DEFAULT_METRICS_PORT))
        start_http_server(port, addr="127.0.0.1", registry=telemetry.registry)
        print(f"[fanout-worker] metrics on http://127.0.0.1:{port}/metrics", flush=True)

        def sample() -> None:
            monitor.sample()
            telemetry.set(ENGAGEMENT_BUFFER_LENGTH, services.timelines.engagement_backlog())

        threading.Thread(
            target=run_every,
            args=(MONITOR_INTERVAL_SECONDS, sample, stopping),
            name="queue-monitor",
            daemon=True,
        ).start()

        if settings.aws_endpoint_url:
            from infra.local_media import ensure_media_bucket, upload_queue_name

            ensure_media_bucket(settings)
            uploads_url = sqs.get_queue_url(QueueName=upload_queue_name(settings.media_bucket))
            threading.Thread(
                target=consume_uploads,
                args=(sqs, uploads_url["QueueUrl"], stopping),
                name="uploads",
                daemon=True,
            ).start()

    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print(f"[fanout-worker] consuming {queue_url}", flush=True)
    while not stopping.is_set():
        try:
            n = drain_once(sqs, handler, queue_url, arn, settings.aws_region, monitor=monitor)
        except Exception as exc:  # keep consuming: one bad poll must not stop local fan-out
            print(f"[fanout-worker] poll failed: {exc!r}", flush=True)
            time.sleep(1)
            continue
        if args.once and n == 0:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
