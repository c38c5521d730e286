"""What the domain and the store adapters measure (newsfeed.telemetry), through the real services
and stores with a RecordingTelemetry wired in by build_services: feed read outcomes, timeline
rebuilds, post cache lookups, store errors, fan-out jobs, widths, chunks and lag.

The adapters that publish these (Prometheus, EMF) are tested in tests/unit; the live stack's
/metrics and dashboards in tests/stack/test_monitoring.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from feed_env import FeedEnv

from feed_adapters.redis.client import make_redis
from feed_adapters.redis.keys import timeline_key, timeline_meta_key
from feed_wiring.settings import Settings
from newsfeed.errors import InvalidInput, TimelineStoreUnavailable
from newsfeed.fanout.handler import FanoutJobHandler
from newsfeed.ids import id_to_ms
from newsfeed.telemetry import (
    FANOUT_CHUNK_JOBS,
    FANOUT_JOBS,
    FANOUT_LAG_SECONDS,
    FANOUT_TIMELINES_WRITTEN,
    FEED_READ_SECONDS,
    POST_CACHE_LOOKUPS,
    STORE_ERRORS,
    TIMELINE_REBUILDS,
)
from tests.fakes.telemetry import RecordingTelemetry
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.integration

TIMEOUT_MS = 500

MakeEnv = Callable[..., FeedEnv]


@pytest.fixture
def rec() -> RecordingTelemetry:
    return RecordingTelemetry()


def outcomes(rec: RecordingTelemetry) -> list[str]:
    return [labels["outcome"] for labels in rec.label_sets(FEED_READ_SECONDS)]


def forget_timeline(env: FeedEnv, user_id: int) -> None:
    """As an eviction or a Redis restart would: the home timeline is gone."""
    env.redis.delete(timeline_key(user_id), timeline_meta_key(user_id))


# -- the read path ------------------------------------------------------------------------------


def test_a_missing_timeline_is_rebuilt_then_served_from_redis(
    make_env: MakeEnv, rec: RecordingTelemetry
) -> None:
    env = make_env(telemetry=rec, celebrity_threshold=1000, timeline_max_len=50)
    reader, author = env.user(), env.user()
    env.services.social.follow(reader, author)
    made = [env.post(author) for _ in range(4)]
    env.redis.flushdb()  # timelines, author lists and post bodies all gone
    rec.clear()

    first = env.services.feed.home_feed(reader, None, 10)
    assert [p.id for p in first.items] == made[::-1] and not first.partial
    assert outcomes(rec) == ["rebuilt"]
    assert rec.label_sets(TIMELINE_REBUILDS) == [{"cause": "missing"}]
    assert rec.total(TIMELINE_REBUILDS) == 1
    assert rec.total(POST_CACHE_LOOKUPS, result="miss") == len(made)
    assert rec.total(POST_CACHE_LOOKUPS, result="hit") == 0
    (seconds,) = rec.values(FEED_READ_SECONDS)
    assert 0 < seconds < 5

    rec.clear()
    second = env.services.feed.home_feed(reader, None, 10)
    assert [p.id for p in second.items] == made[::-1]
    assert outcomes(rec) == ["cached"]
    assert rec.of(TIMELINE_REBUILDS) == []
    assert rec.total(POST_CACHE_LOOKUPS, result="hit") == len(made)
    assert rec.total(POST_CACHE_LOOKUPS, result="miss") == 0
    assert rec.of(STORE_ERRORS) == []


def test_a_new_readers_timeline_exists_but_their_own_author_list_is_rebuilt(
    make_env: MakeEnv, rec: RecordingTelemetry
) -> None:
    env = make_env(telemetry=rec)
    reader = env.user()  # created with an empty, complete timeline
    rec.clear()
    assert env.services.feed.home_feed(reader, None, 10).items == []
    assert rec.of(TIMELINE_REBUILDS) == []
    assert outcomes(rec) == ["rebuilt"]  # the reader's own (empty) author list
    env.services.feed.home_feed(reader, None, 10)
    assert outcomes(rec) == ["rebuilt", "cached"]
    forget_timeline(env, reader)
    rec.clear()
    env.services.feed.home_feed(reader, None, 10)
    assert rec.label_sets(TIMELINE_REBUILDS) == [{"cause": "missing"}]
    assert outcomes(rec) == ["rebuilt"]


def test_an_inactive_readers_timeline_is_rebuilt_as_stale(
    make_env: MakeEnv, rec: RecordingTelemetry
) -> None:
    env = make_env(telemetry=rec)
    reader, author = env.user(), env.user()
    env.services.social.follow(reader, author)
    first = env.post(author)
    env.feed(reader)
    env.set_inactive(reader, days=env.settings.active_days + 1)
    second = env.post(author)  # fan-out skips the inactive reader
    rec.clear()
    assert [p.id for p in env.services.feed.home_feed(reader, None, 10).items] == [second, first]
    assert rec.label_sets(TIMELINE_REBUILDS) == [{"cause": "stale"}]
    assert outcomes(rec) == ["rebuilt"]


def test_reading_past_the_cap_is_lazy(make_env: MakeEnv, rec: RecordingTelemetry) -> None:
    env = make_env(telemetry=rec, timeline_max_len=10, celebrity_threshold=1000)
    reader, a, b = env.user(), env.user(), env.user()
    env.services.social.follow(reader, a)
    env.services.social.follow(reader, b)
    made = [env.post(a if i % 3 else b) for i in range(27)]
    env.services.feed.home_feed(reader, None, 1)  # builds the reader's own author list
    rec.clear()
    assert env.feed(reader, limit=5) == made[::-1]  # six pages
    # The timeline holds the newest 10 (two pages); below its horizon the pages come from the
    # author lists and then, past their cap too, from the post store.
    assert outcomes(rec) == ["cached", "cached", "lazy", "lazy", "lazy", "lazy"]
    assert rec.of(TIMELINE_REBUILDS) == []


# -- store failures -----------------------------------------------------------------------------


@pytest.fixture
def redis_proxy(settings: Settings) -> Iterator[FaultProxy]:
    proxy = FaultProxy(settings.redis_host, settings.redis_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.mark.parametrize(("mode", "kind"), [("down", "unavailable"), ("hang", "timeout")])
def test_redis_failing_makes_the_read_partial_and_counts_the_errors(
    mode: str,
    kind: str,
    make_env: MakeEnv,
    env: FeedEnv,
    redis_proxy: FaultProxy,
    rec: RecordingTelemetry,
) -> None:
    reader, author = env.user(), env.user()
    env.services.social.follow(reader, author)
    made = [env.post(author) for _ in range(5)]
    client = make_redis(
        env.settings.redis_host, redis_proxy.port, env.settings.redis_db, timeout_ms=TIMEOUT_MS
    )
    client.ping()  # connected through the proxy before the fault, as a warm instance is
    try:
        broken = make_env(telemetry=rec, redis_override=client, celebrity_threshold=1000)
        rec.clear()
        redis_proxy.set_mode(mode)
        started = time.monotonic()
        page = broken.services.feed.home_feed(reader, None, 3)
        assert time.monotonic() - started < 2.0
        assert page.partial
        assert [p.id for p in page.items] == made[::-1][:3]
        assert outcomes(rec) == ["partial"]
        redis_errors = rec.label_sets(STORE_ERRORS)
        assert redis_errors, "no store error counted"
        assert all(e["store"] == "redis" for e in redis_errors)
        # The first failed call is counted by its kind; the breaker, open, sheds the rest.
        assert redis_errors[0]["kind"] == kind
        assert {e["kind"] for e in redis_errors[1:]} <= {"shed"}
        assert rec.total(STORE_ERRORS, store="redis", kind=kind) == 1
    finally:
        redis_proxy.set_mode("pass")
        client.close()


def test_a_refused_redis_counts_unavailable_then_shed(
    make_env: MakeEnv, env: FeedEnv, rec: RecordingTelemetry
) -> None:
    reader, author = env.user(), env.user()
    env.services.social.follow(reader, author)
    env.post(author)
    dead = make_redis(env.settings.redis_host, 1)  # nothing listens there
    broken = make_env(telemetry=rec, redis_override=dead)
    rec.clear()
    assert broken.services.feed.home_feed(reader, None, 3).partial
    assert broken.services.feed.home_feed(reader, None, 3).partial
    assert outcomes(rec) == ["partial", "partial"]
    assert rec.total(STORE_ERRORS, store="redis", kind="unavailable") == 1
    assert rec.total(STORE_ERRORS, store="redis", kind="shed") >= 1
    assert rec.total(STORE_ERRORS, store="redis") == len(rec.of(STORE_ERRORS))


# -- fan-out ------------------------------------------------------------------------------------


def push_jobs(jobs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [j for j in jobs if j["kind"] == "fanout" and "upto_id" not in j]


def test_a_push_job_counts_done_the_timelines_it_wrote_and_its_lag(
    make_env: MakeEnv, rec: RecordingTelemetry
) -> None:
    env = make_env(telemetry=rec, recording=True, celebrity_threshold=1000, fanout_chunk_size=100)
    author = env.user()
    followers = [env.user() for _ in range(5)]
    for f in followers:
        env.services.social.follow(f, author)
    env.run_jobs()  # the follows' backfills
    env.set_inactive(followers[0], days=env.settings.active_days + 1)  # skipped by fan-out
    forget_timeline(env, followers[1])  # no timeline: nothing to write into
    post_id = env.post(author)
    jobs = env.queue.drain()
    assert len(push_jobs(jobs)) == 1
    rec.clear()
    before_ms = time.time() * 1000
    for job in jobs:
        env.services.fanout.handle_message(job)
    after_ms = time.time() * 1000

    assert rec.label_sets(FANOUT_JOBS) == [{"kind": "push", "outcome": "done"}]
    assert rec.values(FANOUT_TIMELINES_WRITTEN, kind="push") == [3]
    assert [f for f in followers if post_id in env.timeline(f)] == followers[2:]
    (lag,) = rec.values(FANOUT_LAG_SECONDS)
    created_ms = id_to_ms(post_id)
    assert (before_ms - created_ms) / 1000 - 0.01 <= lag <= (after_ms - created_ms) / 1000 + 0.01
    assert rec.of(FANOUT_CHUNK_JOBS) == []


def test_the_lag_is_measured_from_the_post_ids_time(
    make_env: MakeEnv, rec: RecordingTelemetry
) -> None:
    env = make_env(telemetry=rec, recording=True)
    author, follower = env.user(), env.user()
    env.services.social.follow(follower, author)
    env.run_jobs()
    post_id = env.post(author)
    jobs = env.queue.drain()
    services = env.services
    late = FanoutJobHandler(
        env.graph,
        env.posts,
        services.feeds,
        env.queue,
        services.timelines,
        active_days=env.settings.active_days,
        chunk_size=env.settings.fanout_chunk_size,
        page_size=env.settings.fanout_page_size,
        telemetry=rec,
        wall_ms=lambda: id_to_ms(post_id) + 95_250,
    )
    rec.clear()
    for job in jobs:
        late.handle_message(job)
    assert rec.values(FANOUT_LAG_SECONDS) == [95.25]
    assert rec.values(FANOUT_TIMELINES_WRITTEN, kind="push") == [1]


def test_a_head_job_over_more_followers_than_a_chunk_queues_chunk_jobs(
    make_env: MakeEnv, rec: RecordingTelemetry
) -> None:
    env = make_env(
        telemetry=rec,
        recording=True,
        celebrity_threshold=1000,
        fanout_chunk_size=2,
        fanout_page_size=3,
    )
    author = env.user()
    followers = [env.user() for _ in range(7)]
    for f in followers:
        env.services.social.follow(f, author)
    env.run_jobs()
    post_id = env.post(author)
    rec.clear()
    env.run_jobs()

    assert rec.label_sets(FANOUT_CHUNK_JOBS) == [{"kind": "push"}]
    assert rec.total(FANOUT_CHUNK_JOBS, kind="push") == 4  # ceil(7 / 2)
    assert rec.total(FANOUT_JOBS, kind="push", outcome="done") == 1
    assert rec.total(FANOUT_JOBS, kind="push_chunk", outcome="done") == 4
    assert rec.of(FANOUT_JOBS, outcome="failed") == []
    written = rec.values(FANOUT_TIMELINES_WRITTEN)
    assert len(written) == 4 and sum(written) == len(followers)
    assert len(rec.values(FANOUT_LAG_SECONDS)) == 4  # one per write
    assert all(post_id in env.timeline(f) for f in followers)


def test_an_invalid_message_counts_invalid_failed(
    make_env: MakeEnv, rec: RecordingTelemetry
) -> None:
    env = make_env(telemetry=rec)
    for body in ({"kind": "nope"}, "x", {"kind": "fanout", "author_id": 1}):
        with pytest.raises(InvalidInput):
            env.services.fanout.handle_message(body)  # type: ignore[arg-type]
    assert rec.label_sets(FANOUT_JOBS) == [{"kind": "invalid", "outcome": "failed"}] * 3


def test_a_job_that_fails_counts_failed_by_its_kind(
    make_env: MakeEnv, env: FeedEnv, rec: RecordingTelemetry
) -> None:
    author, follower = env.user(), env.user()
    env.services.social.follow(follower, author)
    post_id = env.post(author)
    dead = make_redis(env.settings.redis_host, 1)
    broken = make_env(telemetry=rec, redis_override=dead, recording=True)
    rec.clear()
    with pytest.raises(TimelineStoreUnavailable):
        broken.services.fanout.handle_message(
            {"kind": "fanout", "author_id": author, "post_id": post_id}
        )
    assert rec.label_sets(FANOUT_JOBS) == [{"kind": "push", "outcome": "failed"}]
    assert rec.total(STORE_ERRORS, store="redis") >= 1
    assert rec.of(FANOUT_LAG_SECONDS) == []
