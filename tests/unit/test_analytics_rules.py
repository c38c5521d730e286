"""The roll-up's pure rules: which events count for which entity, buckets, engagement rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from newsfeed.jobs.rollup import COUNTS, bucket_start, engagement_rate, tally


def test_post_events_count_for_the_post_and_its_author_others_for_the_author_only():
    counts = tally(
        [
            ("impression", 10, 1, 4),
            ("like", 10, 1, 2),
            ("unlike", 10, 1, 1),
            ("follow", None, 1, 3),
            ("unfollow", None, 1, 1),
            ("post", 10, 1, 1),
            ("something_new", 10, 1, 9),  # unknown kinds are ignored
        ]
    )
    assert set(counts) == {("post", 10), ("author", 1)}
    post, author = counts[("post", 10)], counts[("author", 1)]
    assert set(post) == set(COUNTS)
    assert (post["impressions"], post["likes"], post["unlikes"], post["posts"]) == (4, 2, 1, 0)
    assert post["follows"] == 0
    assert (author["impressions"], author["follows"], author["unfollows"], author["posts"]) == (
        4,
        3,
        1,
        1,
    )


def test_engagement_rate_is_likes_over_impressions():
    assert engagement_rate({"impressions": 8, "likes": 2}) == 0.25
    assert engagement_rate({"impressions": 0, "likes": 3}) == 0.0
    assert engagement_rate({}) == 0.0


def test_buckets_are_utc_hours_and_days():
    plus_two = timezone(timedelta(hours=2))
    at = datetime(2026, 3, 1, 1, 30, 15, tzinfo=plus_two)  # 2026-02-28 23:30 UTC
    assert bucket_start(at, "hour") == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert bucket_start(at, "day") == datetime(2026, 2, 28, tzinfo=UTC)
    naive = datetime(2026, 3, 1, 5, 59)  # the stores hand back naive UTC
    assert bucket_start(naive, "hour") == datetime(2026, 3, 1, 5, tzinfo=UTC)
