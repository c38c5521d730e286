"""Ids in MongoDB are fixed-width decimal strings (FerretDB pushes an equality filter down only
for strings and numbers |n| <= 2**53; snowflakes are ~2.5e17), and the adapters give ints back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feed_adapters.mongo.database import events_collection
from feed_adapters.mongo.engagement_store import MongoEngagementStore
from feed_adapters.mongo.post_store import POINT_READ_LIMIT, MongoPostStore
from newsfeed.ids import ID_WIDTH, to_member
from newsfeed.jobs.rollup import EngagementRollup
from newsfeed.model import Post

pytestmark = pytest.mark.integration

BIG = 2**53 + 10  # not exactly representable as a double
AUTHOR = 2**60 + 7
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _post(post_id: int, author_id: int = AUTHOR) -> Post:
    return Post(post_id, author_id, f"post {post_id}", (), AT)


def test_post_is_stored_with_string_ids_and_read_back_by_a_big_id(
    mongo_db: Any, clean_stores: None
) -> None:
    store = MongoPostStore(mongo_db)
    store.insert_post(_post(BIG))
    raw = mongo_db.posts.find_one({"_id": to_member(BIG)})
    assert raw is not None
    assert raw["_id"] == to_member(BIG) and len(raw["_id"]) == ID_WIDTH
    assert raw["author_id"] == to_member(AUTHOR)
    assert mongo_db.posts.count_documents({"_id": BIG}) == 0  # no Int64 copy

    got = store.get_post(BIG)
    assert got is not None and (got.id, got.author_id) == (BIG, AUTHOR)
    assert store.get_post(BIG + 1) is None
    assert store.get_posts([BIG, BIG + 1]) == {BIG: got}
    assert store.author_post_ids(AUTHOR, None, 10) == [BIG]


def test_string_order_is_id_order_across_digit_counts(mongo_db: Any, clean_stores: None) -> None:
    store = MongoPostStore(mongo_db)
    # 16 to 19 digits: plain str() would sort 9... above 1...; the fixed width does not.
    ids = [BIG, 10**16 + 1, 9 * 10**16, 10**17 + 5, 2**62, 2**63 - 1]
    for pid in ids:
        store.insert_post(_post(pid))
    newest_first = sorted(ids, reverse=True)
    assert store.author_post_ids(AUTHOR, None, 100) == newest_first
    assert store.author_post_ids(AUTHOR, 10**17 + 5, 100) == [9 * 10**16, 10**16 + 1, BIG]
    assert [p.id for p in store.author_posts(AUTHOR, 2**62 + 1, 2)] == [2**62, 10**17 + 5]
    assert [p.id for p in store.posts_by_authors([AUTHOR, 1], 2**62, 100)] == newest_first[2:]
    # Both hydration paths: point reads and one `$in` for many misses.
    many = ids + [2**61 + n for n in range(POINT_READ_LIMIT)]
    assert set(store.get_posts(many)) == set(ids)
    assert set(store.get_posts(ids[:2])) == set(ids[:2])


def test_likes_requests_events_and_stats_use_string_ids(mongo_db: Any, clean_stores: None) -> None:
    store = MongoPostStore(mongo_db)
    user = 2**55 + 3
    store.insert_post(_post(BIG))
    liked = store.add_like(BIG, user, AT)
    assert liked is not None and liked.like_count == 1 and store.has_liked(BIG, user)
    like = mongo_db.likes.find_one()
    assert like == {
        "_id": f"{to_member(BIG)}:{to_member(user)}",
        "post_id": to_member(BIG),
        "user_id": to_member(user),
        "created_at": like["created_at"],
    }
    assert store.add_like(BIG, user, AT) is None  # idempotent
    removed = store.remove_like(BIG, user)
    assert removed is not None and removed.like_count == 0

    assert store.claim_post_request(AUTHOR, "k", BIG) == BIG
    assert store.claim_post_request(AUTHOR, "k", BIG + 1) == BIG
    request = mongo_db.post_requests.find_one()
    assert request["_id"] == f"{to_member(AUTHOR)}:k" and request["post_id"] == to_member(BIG)

    event = {"kind": "impression", "actor_id": user, "post_id": BIG, "author_id": AUTHOR}
    MongoEngagementStore(mongo_db).record_events([{**event, "at": AT}])
    raw = mongo_db[events_collection(AT)].find_one()
    assert [raw[f] for f in ("actor_id", "post_id", "author_id")] == [
        to_member(user),
        to_member(BIG),
        to_member(AUTHOR),
    ]

    engagement = MongoEngagementStore(mongo_db)
    hour = AT.replace(minute=0, second=0)
    assert engagement.event_groups(hour, hour + timedelta(hours=1)) == [
        ("impression", BIG, AUTHOR, 1)
    ]
    EngagementRollup(engagement).run()
    stats = mongo_db.engagement_stats.find_one({"grain": "hour", "entity": "post"})
    assert stats["entity_id"] == to_member(BIG)
    assert stats["_id"] == f"hour:post:{to_member(BIG)}:2026-03-04T05"
    rows = engagement.entity_stats("post", BIG, "hour", hour)
    assert [(r.entity_id, r.counts["impressions"]) for r in rows] == [(BIG, 1)]
