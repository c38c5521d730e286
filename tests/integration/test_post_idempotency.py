"""Creating a post with an Idempotency-Key: retries return the first post, never a second one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from feed_env import FeedEnv

from newsfeed.errors import Conflict, InvalidInput, NotFound, QueueUnavailable
from newsfeed.posting.rules import IDEMPOTENCY_KEY_HOURS

pytestmark = pytest.mark.integration


def author_post_ids(env: FeedEnv, author: int) -> list[int]:
    return [p.id for p in env.services.posts.author_posts(author, None, 100).items]


def test_same_key_returns_the_same_post(env: FeedEnv) -> None:
    author, fan = env.user(), env.user()
    env.services.social.follow(fan, author)
    env.feed(fan)
    first = env.services.posts.create(author, "hello", idempotency_key="req-1")
    again = env.services.posts.create(author, "hello", idempotency_key="req-1")
    assert again.id == first.id
    assert author_post_ids(env, author) == [first.id]
    assert env.feed(fan) == [first.id]
    # Another key, or no key, is another post.
    other = env.services.posts.create(author, "hello", idempotency_key="req-2")
    assert other.id != first.id
    assert len(author_post_ids(env, author)) == 2


def test_keys_are_per_author(env: FeedEnv) -> None:
    a, b = env.user(), env.user()
    pa = env.services.posts.create(a, "same words", idempotency_key="k")
    pb = env.services.posts.create(b, "same words", idempotency_key="k")
    assert pa.id != pb.id and pa.author_id == a and pb.author_id == b


def test_reusing_a_key_for_another_post_is_a_conflict(env: FeedEnv) -> None:
    author = env.user()
    env.services.posts.create(author, "first", idempotency_key="k1")
    with pytest.raises(Conflict, match="different post"):
        env.services.posts.create(author, "second", idempotency_key="k1")
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        env.services.posts.create(author, "bad key", idempotency_key="has spaces")


def test_replaying_the_key_of_a_deleted_post_is_a_conflict(env: FeedEnv) -> None:
    author, fan = env.user(), env.user()
    env.services.social.follow(fan, author)
    env.feed(fan)
    post = env.services.posts.create(author, "regret", idempotency_key="k-del")
    env.services.posts.delete(author, post.id)
    with pytest.raises(Conflict, match="deleted"):
        env.services.posts.create(author, "regret", idempotency_key="k-del")
    # Nothing came back: not in the author's list, not in the cache, not in the fan's feed.
    assert env.services.timelines.author_lists([author], None, 10)[author].ids == []
    with pytest.raises(NotFound):
        env.services.posts.get(post.id)
    assert author_post_ids(env, author) == []
    assert env.timeline(fan) == [] and env.feed(fan) == []


def test_queue_failure_is_acknowledged_and_a_retry_completes_delivery(
    env: FeedEnv, monkeypatch
) -> None:
    author, fan = env.user(), env.user()
    env.services.social.follow(fan, author)
    env.feed(fan)
    deliver = env.queue.send

    def queue_down(jobs):
        raise QueueUnavailable()

    monkeypatch.setattr(env.queue, "send", queue_down)
    # Stored (pending delivery, which the repair job would finish): acknowledged, not 503.
    first = env.services.posts.create(author, "important", idempotency_key="r1")
    saved = author_post_ids(env, author)
    assert saved == [first.id]
    assert len(saved) == 1, "the post is kept in MongoDB, not lost"
    assert saved[0] not in env.timeline(fan), "not delivered while the queue is down"

    monkeypatch.setattr(env.queue, "send", deliver)
    retried = env.services.posts.create(author, "important", idempotency_key="r1")
    assert retried.id == saved[0]
    assert author_post_ids(env, author) == [retried.id]
    assert env.timeline(fan) == [retried.id]


def _age_claims(env: FeedEnv, hours: float) -> None:
    """Every idempotency claim recorded `hours` ago."""
    at = datetime.now(UTC) - timedelta(hours=hours)
    env.db.post_requests.update_many({}, {"$set": {"at": at}})


def test_a_key_claims_its_post_for_24_hours_then_posts_again(env: FeedEnv) -> None:
    author = env.user()
    first = env.services.posts.create(author, "hello", idempotency_key="day-1")
    _age_claims(env, IDEMPOTENCY_KEY_HOURS - 1)
    assert env.services.posts.create(author, "hello", idempotency_key="day-1").id == first.id
    _age_claims(env, IDEMPOTENCY_KEY_HOURS + 1)
    later = env.services.posts.create(author, "a new post", idempotency_key="day-1")
    assert later.id != first.id and later.text == "a new post"
    # The key now claims the new post, for another 24 hours; the first post is untouched.
    assert env.services.posts.create(author, "a new post", idempotency_key="day-1").id == later.id
    assert env.services.posts.get(first.id).text == "hello"


def test_cleanup_deletes_claims_older_than_24_hours_only(env: FeedEnv) -> None:
    author = env.user()
    env.services.posts.create(author, "old", idempotency_key="old-1")
    env.services.posts.create(author, "old", idempotency_key="old-2")
    _age_claims(env, IDEMPOTENCY_KEY_HOURS + 0.1)
    env.services.posts.create(author, "new", idempotency_key="new-1")
    report = env.services.cleanup.run()
    assert report.claims_expired == 2 and report.to_dict()["claims_expired"] == 2
    assert [d["_id"].split(":")[1] for d in env.db.post_requests.find()] == ["new-1"]
    assert env.services.cleanup.run().claims_expired == 0
