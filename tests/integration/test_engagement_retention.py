"""Raw engagement events by time (issue 12, item 4): one collection per UTC day of the events'
time (`engagement_events_YYYYMMDD`), read by the roll-up for the hours it recomputes, with the
single collection of earlier releases (`engagement_events`) until it is empty; the cleanup job
drops whole days past ENGAGEMENT_RETENTION_DAYS, and only once the roll-up has counted them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from feed_env import FeedEnv

from feed_adapters.mongo.database import events_collection
from feed_adapters.mongo.documents import event_doc
from newsfeed.jobs.cleanup import CleanupReport, TimelineCleanup
from newsfeed.jobs.retention import EventRetention
from newsfeed.jobs.rollup import EngagementRollup, bucket_start

pytestmark = pytest.mark.integration

POST, AUTHOR, READER = 10**17 + 1, 10**17 + 2, 10**17 + 3
DAY = timedelta(days=1)
LEGACY = "engagement_events"


def _impressions(at: datetime, n: int = 1) -> list[dict[str, Any]]:
    """Impressions as the read path writes them when Redis is down: with an `event_id`, so each
    is stored under an ObjectId of `at` (as if stored then)."""
    event = {"kind": "impression", "actor_id": READER, "post_id": POST, "author_id": AUTHOR}
    return [{**event, "at": at, "event_id": uuid.uuid4().hex} for _ in range(n)]


def _like(at: datetime) -> dict[str, Any]:
    """A like recorded now (its ObjectId is made at the insert) that happened at `at`."""
    return {"kind": "like", "actor_id": READER, "post_id": POST, "author_id": AUTHOR, "at": at}


def _rollup(env: FeedEnv, at: datetime, since: datetime | None = None) -> None:
    EngagementRollup(env.events, clock=lambda: at).run(since)


def _cleanup(env: FeedEnv, at: datetime) -> CleanupReport:
    days = env.settings.engagement_retention_days
    return TimelineCleanup(
        env.graph,
        env.services.timelines,
        active_days=env.settings.active_days,
        events=EventRetention(env.events, days=days),
        clock=lambda: at.timestamp(),
    ).run()


def _hourly(env: FeedEnv, counter: str = "impressions") -> dict[datetime, int]:
    since = datetime(2020, 1, 1, tzinfo=UTC)
    rows = env.events.entity_stats("post", POST, "hour", since)
    return {r.start: r.counts[counter] for r in rows if r.counts[counter]}


def _stats(env: FeedEnv) -> list[dict[str, Any]]:
    return sorted(env.db.engagement_stats.find(), key=lambda d: d["_id"])


def _event_collections(env: FeedEnv) -> list[str]:
    return sorted(n for n in env.db.list_collection_names() if n.startswith(LEGACY))


def _noon(days_ago: int) -> datetime:
    return bucket_start(datetime.now(UTC), "day") - days_ago * DAY + timedelta(hours=12)


def test_events_go_to_the_collection_of_their_utc_day_and_the_rollup_reads_each(env: FeedEnv):
    midnight = bucket_start(datetime.now(UTC), "day")
    before, after = midnight - timedelta(seconds=30), midnight + timedelta(seconds=30)
    env.events.record_events([_like(before), _like(after)])
    assert env.db[events_collection(before)].count_documents({}) == 1
    assert env.db[events_collection(after)].count_documents({}) == 1
    assert LEGACY not in env.db.list_collection_names()  # nothing writes it any more

    env.services.rollup.run()
    assert _hourly(env, "likes") == {
        bucket_start(before, "hour"): 1,
        bucket_start(after, "hour"): 1,
    }
    days = env.events.entity_stats("author", AUTHOR, "day", midnight - DAY)
    assert [(r.start, r.counts["likes"]) for r in days] == [(midnight - DAY, 1), (midnight, 1)]
    # Each run makes today's and tomorrow's collections ready, their index included, so the
    # writers of the next day never create one (nor leave it without its index).
    for day in (midnight, midnight + DAY):
        assert "by_time" in env.db[events_collection(day)].index_information()


def test_the_rollup_counts_the_legacy_collection_and_the_day_collections_exactly_once(
    env: FeedEnv,
):
    at = datetime.now(UTC) - timedelta(hours=1)
    hour = bucket_start(at, "hour")
    # Stored by an earlier release into the one collection, before the upgrade.
    env.db[LEGACY].insert_many([event_doc(e) for e in _impressions(at, 3)])
    env.events.record_events(_impressions(at, 2))
    env.events.add_impression_counts("batch-1", hour, [(POST, AUTHOR, 4)])

    env.services.rollup.run()
    assert _hourly(env) == {hour: 9}
    before = _stats(env)
    env.services.rollup.run()
    env.services.rollup.run(since=datetime(2020, 1, 1, tzinfo=UTC))
    assert _stats(env) == before


def test_rolled_up_events_past_retention_go_with_their_whole_day(env: FeedEnv):
    now = datetime.now(UTC)
    retention = env.settings.engagement_retention_days
    old, older, kept = _noon(retention + 1), _noon(retention + 3), _noon(retention - 1)
    for at in (older, old, kept):
        env.events.record_events(_impressions(at, 2))
    env.events.add_impression_counts("batch-1", bucket_start(old, "hour"), [(POST, AUTHOR, 5)])
    _rollup(env, now + timedelta(minutes=5))  # has counted everything stored until now
    counted = _stats(env)
    assert _hourly(env) == {
        bucket_start(older, "hour"): 2,
        bucket_start(old, "hour"): 7,
        bucket_start(kept, "hour"): 2,
    }

    report = _cleanup(env, now)
    assert (report.event_days_dropped, report.impression_counts_deleted) == (2, 1)
    assert report.to_dict()["event_days_dropped"] == 2
    left = _event_collections(env)
    assert events_collection(older) not in left and events_collection(old) not in left
    assert events_collection(kept) in left
    assert env.db.impression_counts.count_documents({}) == 0
    # Stats are kept, and hours past the retention are final: redoing every hour changes
    # nothing, though their raw events are gone.
    assert _stats(env) == counted
    _rollup(env, now + timedelta(minutes=6), since=datetime(2020, 1, 1, tzinfo=UTC))
    assert _stats(env) == counted
    assert _cleanup(env, now).event_days_dropped == 0  # idempotent

    # An impression of that expired day arrives only now, later than the retention: its hour
    # is final, so it is not counted (a recompute would put 1 in place of 7) ...
    env.events.record_events([{**_like(old), "kind": "impression"}])
    _rollup(env, now + timedelta(minutes=7), since=now - timedelta(minutes=1))  # sees it
    assert _stats(env) == counted
    # ... and it goes with its day (a collection again) at the next cleanup.
    assert _cleanup(env, now).event_days_dropped == 1
    assert events_collection(old) not in _event_collections(env)


def test_events_the_rollup_has_not_counted_are_never_dropped(env: FeedEnv):
    now = datetime.now(UTC)
    retention = env.settings.engagement_retention_days
    oldest, old = _noon(retention + 5), _noon(retention + 3)
    env.events.record_events(_impressions(oldest) + _impressions(old))
    assert _cleanup(env, now).event_days_dropped == 0  # no roll-up has run: nothing is counted
    assert events_collection(oldest) in _event_collections(env)

    env.services.rollup.run()  # counts both; its watermark is now
    # An event of that old day arrives only now: the roll-up has not seen it.
    late = old + timedelta(minutes=30)
    env.events.record_events([_like(late)])
    report = _cleanup(env, now)
    assert report.event_days_dropped == 1  # the oldest day only
    assert events_collection(oldest) not in _event_collections(env)
    assert events_collection(old) in _event_collections(env)

    _rollup(env, now + timedelta(minutes=5))  # the next run counts the late like
    assert _hourly(env, "likes") == {bucket_start(late, "hour"): 1}
    assert _cleanup(env, now).event_days_dropped == 1
    assert events_collection(old) not in _event_collections(env)
    assert _hourly(env) == {bucket_start(oldest, "hour"): 1, bucket_start(old, "hour"): 1}
    assert _hourly(env, "likes") == {bucket_start(late, "hour"): 1}


def test_the_legacy_collection_is_rolled_up_then_deleted_by_time_and_dropped_once_empty(
    env: FeedEnv,
):
    now = datetime.now(UTC)
    retention = env.settings.engagement_retention_days
    old, recent = _noon(retention + 2), _noon(1)
    legacy = _impressions(old) + _impressions(old + timedelta(hours=1)) + _impressions(recent)
    env.db[LEGACY].insert_many([event_doc(e) for e in legacy])
    env.events.record_events(_impressions(now))
    _rollup(env, now + timedelta(minutes=5))
    counted = _stats(env)
    assert sum(_hourly(env).values()) == 4

    report = _cleanup(env, now)  # the old day's two hours, one range each
    assert report.legacy_events_deleted == 2
    assert env.db[LEGACY].count_documents({}) == 1
    assert _stats(env) == counted

    # Once the last of them is past the retention it goes too, and with it the collection:
    # the roll-up reads it no more.
    later = now + retention * DAY
    report = _cleanup(env, later)
    assert report.legacy_events_deleted == 1
    assert LEGACY not in env.db.list_collection_names()
    assert _stats(env) == counted
    _rollup(env, later + timedelta(minutes=5), since=datetime(2020, 1, 1, tzinfo=UTC))
    assert _stats(env) == counted


def test_the_cleanup_function_reports_what_it_expired(env: FeedEnv):
    report = env.services.cleanup.run().to_dict()
    for key in ("event_days_dropped", "legacy_events_deleted", "impression_counts_deleted"):
        assert report[key] == 0
