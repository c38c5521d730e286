#!/usr/bin/env python3
"""Create the fan-out queue and its dead-letter queue in the AWS emulator (idempotent).

    python infra/local_queues.py          prints the fan-out queue URL

In AWS the SAM template owns these queues; locally `make up` and the tests create them here with
the same shape: a redrive policy that moves a message to the DLQ after `max_receive_count`
failed deliveries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from feed_wiring.settings import Settings

VISIBILITY_TIMEOUT_SECONDS = 30
MAX_RECEIVE_COUNT = 3


def sqs_client(settings: Settings):
    import boto3

    return boto3.client(
        "sqs",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def ensure_fanout_queues(
    settings: Settings,
    name: str | None = None,
    visibility_timeout: int = VISIBILITY_TIMEOUT_SECONDS,
    max_receive_count: int = MAX_RECEIVE_COUNT,
) -> tuple[str, str]:
    """Returns (queue_url, dlq_url)."""
    sqs = sqs_client(settings)
    name = name or settings.fanout_queue_name
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(visibility_timeout),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        ),
    }
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    # create_queue does not change an existing queue's attributes; set them every time.
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url, dlq_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url-only", action="store_true", help="print only the queue URL")
    args = parser.parse_args(argv)
    settings = Settings.from_env(os.environ)
    if not settings.aws_endpoint_url:
        raise SystemExit("AWS_ENDPOINT_URL is empty: queues in AWS come from template.yaml")
    url, dlq = ensure_fanout_queues(settings)
    print(url if args.url_only else f"[queues] fan-out queue {url} (dead letters: {dlq})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
