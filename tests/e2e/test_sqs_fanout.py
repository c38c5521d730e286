"""The SQS fan-out path through the AWS emulator: posts service -> SQS -> fan-out handler.

Real queue (ministack), real stores, the real `functions/fanout/app.handler`; the delivery loop
is infra/fanout_worker.py's, which stands in for Lambda's event source mapping until the SAM
stack is deployed to the emulator.
"""

from __future__ import annotations

import dataclasses
import uuid
from types import ModuleType

import pytest

from functions import load_app
from infra import fanout_worker, local_queues

pytestmark = pytest.mark.e2e


@pytest.fixture
def queue(settings):
    if not settings.aws_endpoint_url:
        pytest.skip("AWS_ENDPOINT_URL is empty: no emulator to create queues in")
    name = f"fanout-e2e-{uuid.uuid4().hex[:8]}"
    url, dlq = local_queues.ensure_fanout_queues(
        settings, name=name, visibility_timeout=1, max_receive_count=2
    )
    sqs = local_queues.sqs_client(settings)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    yield sqs, url, dlq, arn
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dlq)


@pytest.fixture
def fanout_handler(settings, queue, monkeypatch) -> ModuleType:
    """The fan-out function as Lambda loads it, configured by environment like in AWS."""
    _, url, _, _ = queue
    env = {
        "POSTGRES_DB": settings.postgres_db,
        "MONGODB_DB": settings.mongodb_db,
        "REDIS_DB": str(settings.redis_db),
        "FANOUT_QUEUE_URL": url,
        "FANOUT_CHUNK_SIZE": "2",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "FeedPlatformTest",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return load_app("fanout")


@pytest.fixture
def services(settings, queue):
    from feed_wiring.root import build_services

    _, url, _, _ = queue
    return build_services(dataclasses.replace(settings, fanout_queue_url=url, fanout_chunk_size=2))


def drain(queue, handler, rounds: int = 20) -> int:
    sqs, url, _, arn = queue
    delivered = 0
    for _ in range(rounds):
        n = fanout_worker.drain_once(sqs, handler, url, arn, "us-east-1", wait_seconds=1)
        if n == 0:
            break
        delivered += n
    return delivered


def make_user(services, prefix: str) -> int:
    handle = f"{prefix}_{uuid.uuid4().hex[:8]}"
    return services.profiles.create_profile(f"e2e|{handle}", handle, prefix).id


def feed_ids(services, reader: int) -> list[int]:
    return [p.id for p in services.feed.home_feed(reader, None, 50).items]


def test_post_reaches_every_follower_through_sqs_chunks(services, queue, fanout_handler):
    author = make_user(services, "author")
    followers = [make_user(services, "fan") for _ in range(5)]
    for f in followers:
        services.social.follow(f, author)
        feed_ids(services, f)  # an active reader with a built timeline

    post = services.posts.create(author, "through the emulator's queue").id
    # Five followers with chunk size 2: a head job and three chunk jobs, all through SQS.
    assert drain(queue, fanout_handler.handler) == 4
    for f in followers:
        assert post in services.timelines.timeline_ids(f)
        assert post in feed_ids(services, f)

    services.posts.delete(author, post)
    # The tombstone hides the post at once, before any retract ran...
    for f in followers:
        assert post not in feed_ids(services, f)
        assert post in services.timelines.timeline_ids(f)
    # ...and the retract (head + three chunks) takes it out of the timelines themselves.
    assert drain(queue, fanout_handler.handler) == 4
    for f in followers:
        assert post not in services.timelines.timeline_ids(f)


def test_poison_message_goes_to_dlq_and_spares_the_rest_of_its_batch(
    services, queue, fanout_handler
):
    sqs, url, dlq, _ = queue
    author = make_user(services, "author")
    fan = make_user(services, "fan")
    services.social.follow(fan, author)
    feed_ids(services, fan)
    sqs.send_message(QueueUrl=url, MessageBody="this is not a fan-out job")
    post = services.posts.create(author, "sent beside a poison message").id

    drain(queue, fanout_handler.handler)
    assert post in feed_ids(services, fan)

    # The poison message is redelivered after its visibility timeout, fails again, and the
    # redrive policy (maxReceiveCount 2) moves it to the dead-letter queue.
    dead: list[str] = []
    for _ in range(10):
        drain(queue, fanout_handler.handler, rounds=3)
        got = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
        dead += [m["Body"] for m in got]
        if dead:
            break
    assert dead == ["this is not a fan-out job"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]
    assert attrs["ApproximateNumberOfMessages"] == "0"
