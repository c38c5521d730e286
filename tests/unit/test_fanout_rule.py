from __future__ import annotations

import pytest

from newsfeed.errors import InvalidInput
from newsfeed.fanout import chunk_jobs, head_job, mode_after_count, plan_chunks, validate_job
from newsfeed.stores.inline_queue import InlineFanoutQueue, RecordingFanoutQueue


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
    assert mode_after_count(mode, count, threshold=3) == expected


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


def test_chunk_jobs_carry_the_head_and_their_range() -> None:
    head = head_job("fanout", author_id=1, post_id=2)
    jobs = chunk_jobs(head, [(0, 5), (5, 9)])
    assert jobs[1] == {
        "kind": "fanout",
        "author_id": 1,
        "post_id": 2,
        "after_id": 5,
        "upto_id": 9,
        "chunk": 1,
        "chunks": 2,
    }
    for job in (head, *jobs, head_job("backfill_author", author_id=1, job_id="j")):
        assert validate_job(job) is job


@pytest.mark.parametrize(
    "job",
    [
        None,
        [],
        {"kind": "fanout"},
        {"kind": "fanout", "author_id": True, "post_id": 1},
        {"kind": "retract", "author_id": 1, "post_id": 1, "upto_id": 5},
        {"kind": "backfill_author", "author_id": 1, "job_id": 7},
    ],
)
def test_validate_job_refuses_malformed(job: object) -> None:
    with pytest.raises(InvalidInput):
        validate_job(job)


def test_inline_queue_runs_jobs_in_order_including_jobs_sent_by_jobs() -> None:
    seen: list[int] = []
    queue = InlineFanoutQueue()

    def handler(job: dict) -> None:
        seen.append(job["n"])
        if job["n"] == 1:
            queue.send([{"n": 10}, {"n": 11}])

    queue.bind(handler)
    queue.send([{"n": 1}, {"n": 2}])
    assert seen == [1, 2, 10, 11]
    assert [j["n"] for j in queue.handled] == [1, 2, 10, 11]


def test_inline_queue_needs_a_handler_and_recording_queue_drains() -> None:
    with pytest.raises(RuntimeError):
        InlineFanoutQueue().send([{}])
    rec = RecordingFanoutQueue()
    rec.send([{"a": 1}])
    assert rec.drain() == [{"a": 1}] and rec.jobs == []
