"""Claims of media by posts when the post's insert fails, or a request is retried with its
Idempotency-Key (real PostgreSQL, FerretDB, Redis): a medium never ends up on no post while a
stored post shows it (its objects would be removed a day later), nor held for good by a post
that was never stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from feed_env import FeedEnv

from newsfeed.errors import Conflict, PostStoreUnavailable
from newsfeed.ids import IdGenerator
from newsfeed.media.service import READY, STALE_CLAIM, upload_key
from newsfeed.model import MediaRecord, MediaVariant

pytestmark = pytest.mark.integration


def ready_medium(env: FeedEnv, owner: int, state: str = READY) -> int:
    """A processed medium's record (its objects are not needed to attach it)."""
    media_id = IdGenerator().next_id()
    env.services.media._store.insert_media(
        MediaRecord(
            id=media_id,
            owner_id=owner,
            content_type="image/png",
            size_bytes=10,
            state=state,
            key=upload_key(owner, media_id),
            created_at=datetime.now(UTC),
            kind="image",
            width=4,
            height=3,
            placeholder="#000000",
            variants=(
                MediaVariant("display", f"media/{media_id}/t/display.webp", "image/webp", 4, 3),
            ),
        )
    )
    return media_id


def record(env: FeedEnv, media_id: int) -> MediaRecord:
    found = env.services.media._store.get_media(media_id)
    assert found is not None
    return found


def later(env: FeedEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The media service's clock past STALE_CLAIM."""
    moved = datetime.now(UTC) + STALE_CLAIM + timedelta(minutes=1)
    monkeypatch.setattr(env.services.media, "_clock", lambda: moved)


def failing_insert(env: FeedEnv, monkeypatch: pytest.MonkeyPatch, *, lands: bool) -> None:
    real = env.posts.insert_post

    def insert(post: Any) -> None:
        if lands:
            real(post)  # stored, and then the answer is lost
        raise PostStoreUnavailable()

    monkeypatch.setattr(env.posts, "insert_post", insert)


def test_an_insert_that_landed_but_failed_keeps_its_media(
    make_env: Callable[..., FeedEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env()
    alice = env.user()
    medium = ready_medium(env, alice)
    failing_insert(env, monkeypatch, lands=True)
    with pytest.raises(PostStoreUnavailable):
        env.services.posts.create(alice, "pic", [medium])
    held = record(env, medium)
    assert held.post_id is not None and not held.claim_confirmed  # not let go: it may be stored
    (stored,) = env.services.posts.author_posts(alice, None, 10).items
    assert stored.id == held.post_id and stored.media[0].id == medium

    monkeypatch.undo()
    later(env, monkeypatch)
    assert env.services.media.settle_claims() == 0  # the post exists: confirmed
    assert record(env, medium).claim_confirmed
    with pytest.raises(Conflict, match="attached to another post"):
        env.services.posts.create(alice, "again", [medium])
    # On a post: the cleanup job's day-old sweep leaves it alone.
    later(env, monkeypatch)
    assert env.services.media.remove_unattached() == 0


def test_an_insert_that_never_landed_is_let_go_by_the_cleanup(
    make_env: Callable[..., FeedEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env()
    alice = env.user()
    medium = ready_medium(env, alice)
    failing_insert(env, monkeypatch, lands=False)
    with pytest.raises(PostStoreUnavailable):
        env.services.posts.create(alice, "pic", [medium])
    assert record(env, medium).post_id is not None
    monkeypatch.undo()
    with pytest.raises(Conflict):  # not yet stale: a create may still be in flight
        env.services.posts.create(alice, "retry at once", [medium])
    later(env, monkeypatch)
    assert env.services.media.settle_claims() == 1
    assert record(env, medium).post_id is None
    made = env.services.posts.create(alice, "retry", [medium])
    assert made.media[0].id == medium and record(env, medium).claim_confirmed


def test_a_keyed_request_never_lets_go_of_what_a_retry_may_hold(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env()
    alice = env.user()
    first, second = ready_medium(env, alice), ready_medium(env, alice, state="pending")
    # The second is not processed yet: refused, and the first stays claimed by the key's post
    # (a concurrent retry of the same request could be storing the post with it).
    with pytest.raises(Conflict, match="not processed yet"):
        env.services.posts.create(alice, "two", [first, second], idempotency_key="k-1")
    claimed = record(env, first)
    assert claimed.post_id is not None and not claimed.claim_confirmed
    # Processed now; the same request again takes both for the same post, and confirms them.
    env.services.media._store._media.update_one(
        {"_id": f"{second:019d}"}, {"$set": {"state": READY}}
    )
    made = env.services.posts.create(alice, "two", [first, second], idempotency_key="k-1")
    assert made.id == claimed.post_id and [m.id for m in made.media] == [first, second]
    assert record(env, first).claim_confirmed and record(env, second).claim_confirmed
    assert (
        env.services.posts.create(alice, "two", [first, second], idempotency_key="k-1").id
        == made.id
    )


def test_an_unkeyed_request_lets_go_at_once_when_a_medium_is_refused(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env()
    alice, bob = env.user(), env.user()
    mine, bobs = ready_medium(env, alice), ready_medium(env, bob)
    with pytest.raises(Exception, match="not found"):
        env.services.posts.create(alice, "two", [mine, bobs])
    assert record(env, mine).post_id is None
    assert env.services.posts.create(alice, "one", [mine]).media[0].id == mine
