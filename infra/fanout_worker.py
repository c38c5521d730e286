#!/usr/bin/env python3
"""Local stand-in for the SQS event source mapping: feeds queue batches to the fan-out handler.

    python infra/fanout_worker.py [--once]

It long-polls the fan-out queue in the AWS emulator, hands each batch to
`functions/fanout/app.handler` as an SQS event (the same shape Lambda delivers), deletes the
messages the handler did not report in `batchItemFailures`, and leaves the failed ones to come
back after their visibility timeout, so the queue's redrive policy moves poison messages to the
dead-letter queue exactly as in AWS. Once the SAM stack is deployed to the emulator, the real
event source mapping does this job instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
import uuid
from types import ModuleType

from feed_wiring.settings import Settings
from infra.local_queues import ensure_fanout_queues, sqs_client

BATCH_SIZE = 10


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


def drain_once(
    sqs, handler, queue_url: str, queue_arn: str, region: str, wait_seconds: int = 1
) -> int:
    """Deliver one batch; returns how many messages it received."""
    got = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=BATCH_SIZE,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
    )
    messages = got.get("Messages", [])
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="drain what is queued, then exit")
    args = parser.parse_args()
    settings = Settings.from_env(os.environ)
    queue_url, _ = ensure_fanout_queues(settings)
    sqs = sqs_client(settings)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    handler = load_fanout_handler().handler
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print(f"[fanout-worker] consuming {queue_url}", flush=True)
    while not stopping:
        try:
            n = drain_once(sqs, handler, queue_url, arn, settings.aws_region)
        except Exception as exc:  # keep consuming: one bad poll must not stop local fan-out
            print(f"[fanout-worker] poll failed: {exc!r}", flush=True)
            time.sleep(1)
            continue
        if args.once and n == 0:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
