from __future__ import annotations

import pytest

from newsfeed.fanout.jobs import PushPost, RetractPost, to_message
from newsfeed.fanout.rule import Threshold, mode_after_count, plan_chunks
from tests.fakes.queues import InlineFanoutQueue, RecordingFanoutQueue


@pytest.mark.parametrize(
    ("mode", "count", "expected"),
    [
        ("push", 2, ("push", None)),
        ("push", 3, ("pull", "to_pull")),
        ("pull", 5, ("pull", None)),
        ("pull", 2, ("push_pending", "to_push_pending")),
        ("push_pending", 2, ("push_pending", None)),
        ("push_pending", 3, ("pull", "to_pull")),
    ],
)
def test_mode_after_count(mode: str, count: int, expected: tuple[str, str | None]) -> None:
    assert mode_after_count(mode, count, Threshold.of(3)) == expected


@pytest.mark.parametrize(
    ("mode", "count", "expected"),
    [
        ("pull", 9_999, ("pull", None)),
        ("pull", 9_000, ("pull", None)),  # inside the band: no backfill
        ("pull", 8_999, ("push_pending", "to_push_pending")),
        ("push", 9_999, ("push", None)),
        ("push", 10_000, ("pull", "to_pull")),
        ("push_pending", 10_000, ("pull", "to_pull")),
    ],
)
def test_hysteresis_below_the_threshold(
    mode: str, count: int, expected: tuple[str, str | None]
) -> None:
    assert Threshold.of(10_000) == Threshold(10_000, 9_000)
    assert mode_after_count(mode, count, Threshold.of(10_000)) == expected


def test_the_low_mark_must_be_at_most_the_threshold() -> None:
    with pytest.raises(ValueError):
        Threshold.of(100, 101)
    with pytest.raises(ValueError):
        Threshold.of(100, 0)


def test_plan_chunks_covers_every_follower_once() -> None:
    ids = [3, 5, 8, 13, 21, 34, 55]
    ranges = list(plan_chunks(ids, 3))
    assert ranges == [(0, 8), (8, 34), (34, 55)]
    covered = [i for lo, hi in ranges for i in ids if lo < i <= hi]
    assert covered == ids
    assert list(plan_chunks([], 3)) == []
    assert list(plan_chunks([7], 3)) == [(0, 7)]
    assert list(plan_chunks([1, 2, 3], 3)) == [(0, 3)]
    with pytest.raises(ValueError):
        list(plan_chunks(ids, 0))


def test_inline_queue_runs_jobs_in_order_including_jobs_sent_by_jobs() -> None:
    seen: list[int] = []
    queue = InlineFanoutQueue()

    def handler(job: dict) -> None:
        seen.append(job["post_id"])
        if job["post_id"] == 1:
            queue.send([PushPost(author_id=9, post_id=10), PushPost(author_id=9, post_id=11)])

    queue.bind(handler)
    queue.send([PushPost(author_id=9, post_id=1), RetractPost(author_id=9, post_id=2)])
    assert seen == [1, 2, 10, 11]
    assert [j["post_id"] for j in queue.handled] == [1, 2, 10, 11]


def test_inline_queue_needs_a_handler_and_recording_queue_drains() -> None:
    with pytest.raises(RuntimeError):
        InlineFanoutQueue().send([PushPost(author_id=1, post_id=2)])
    rec = RecordingFanoutQueue()
    rec.send([PushPost(author_id=1, post_id=2)])
    assert rec.drain() == [to_message(PushPost(author_id=1, post_id=2))] and rec.jobs == []
