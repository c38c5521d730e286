"""Typed fan-out jobs: the wire shape round-trips, and anything malformed is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsfeed.errors import InvalidInput
from newsfeed.fanout.jobs import (
    BackfillAuthor,
    BackfillAuthorChunk,
    ChunkRange,
    InvalidJob,
    MergeAuthor,
    PushPost,
    PushPostChunk,
    RefreshPost,
    RetractPost,
    RetractPostChunk,
    chunk_jobs,
    parse_job,
    to_message,
)
from newsfeed.ids import MAX_ID


def test_chunk_jobs_carry_the_head_and_their_range() -> None:
    jobs = chunk_jobs(PushPost(author_id=1, post_id=2), [(0, 5), (5, 9)])
    assert jobs == [
        PushPostChunk(1, 2, ChunkRange(0, 5, 0, 2)),
        PushPostChunk(1, 2, ChunkRange(5, 9, 1, 2)),
    ]
    # The wire shape is the one every release has sent (messages in flight survive a deploy).
    assert to_message(jobs[1]) == {
        "kind": "fanout",
        "author_id": 1,
        "post_id": 2,
        "after_id": 5,
        "upto_id": 9,
        "chunk": 1,
        "chunks": 2,
    }
    assert to_message(BackfillAuthor(author_id=3, job_id="ab12")) == {
        "kind": "backfill_author",
        "author_id": 3,
        "job_id": "ab12",
    }
    assert [type(j) for j in chunk_jobs(RetractPost(1, 2), [(0, 5)])] == [RetractPostChunk]
    assert [type(j) for j in chunk_jobs(BackfillAuthor(1, "f"), [(0, 5)])] == [BackfillAuthorChunk]


def test_chunk_jobs_carry_when_their_head_read_the_followers() -> None:
    (job,) = chunk_jobs(PushPost(1, 2), [(0, 5)], as_of=1_767_225_600_123)
    assert job.span.as_of == 1_767_225_600_123
    assert to_message(job)["as_of"] == 1_767_225_600_123
    # A chunk of an earlier release (no as_of) reads from the store of record.
    old = {"kind": "retract", "author_id": 1, "post_id": 2, "after_id": 0, "upto_id": 5}
    assert parse_job(old) == RetractPostChunk(1, 2, ChunkRange(0, 5, 0, 1, 0))


ids = st.integers(1, MAX_ID)


@st.composite
def any_job(draw: st.DrawFn) -> object:
    author, post = draw(ids), draw(ids)
    after = draw(st.integers(0, MAX_ID - 1))
    chunks = draw(st.integers(1, 50))
    span = ChunkRange(
        after,
        draw(st.integers(after + 1, MAX_ID)),
        draw(st.integers(0, chunks - 1)),
        chunks,
        draw(st.sampled_from([0, 1, 1_767_225_600_123])),
    )
    job_id = draw(st.text("0123456789abcdef", min_size=1, max_size=64))
    return draw(
        st.sampled_from(
            [
                PushPost(author, post),
                PushPostChunk(author, post, span),
                RetractPost(author, post),
                RetractPostChunk(author, post, span),
                BackfillAuthor(author, job_id),
                BackfillAuthorChunk(author, job_id, span),
                BackfillAuthorChunk(author, job_id, span, plan=job_id[:12]),
                MergeAuthor(reader_id=post, author_id=author),
                RefreshPost(post),
            ]
        )
    )


@given(any_job())
def test_every_job_round_trips_through_its_message(job: object) -> None:
    assert parse_job(to_message(job)) == job  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        {},
        {"kind": "nope", "author_id": 1, "post_id": 2},
        {"kind": "fanout"},
        {"kind": "fanout", "author_id": 1},
        {"kind": "fanout", "author_id": True, "post_id": 1},
        {"kind": "fanout", "author_id": "1", "post_id": 2},
        {"kind": "fanout", "author_id": 0, "post_id": 2},
        {"kind": "fanout", "author_id": 1, "post_id": MAX_ID + 1},
        {"kind": "fanout", "author_id": 1, "post_id": -5},
        {"kind": "retract", "author_id": 1, "post_id": 1, "upto_id": 5},
        {"kind": "retract", "author_id": 1, "post_id": 1, "after_id": 5, "upto_id": 5},
        {
            "kind": "fanout",
            "author_id": 1,
            "post_id": 1,
            "after_id": 0,
            "upto_id": 5,
            "chunk": 2,
            "chunks": 2,
        },
        {
            "kind": "fanout",
            "author_id": 1,
            "post_id": 1,
            "after_id": 0,
            "upto_id": 5,
            "chunk": "0",
            "chunks": 2,
        },
        {"kind": "fanout", "author_id": 1, "post_id": 1, "upto_id": 5, "as_of": -1},
        {"kind": "fanout", "author_id": 1, "post_id": 1, "upto_id": 5, "as_of": "1"},
        {"kind": "fanout", "author_id": 1, "post_id": 1, "upto_id": 5, "as_of": True},
        {"kind": "backfill_author", "author_id": 1},
        {"kind": "backfill_author", "author_id": 1, "job_id": 7},
        {"kind": "backfill_author", "author_id": 1, "job_id": "NOT-HEX"},
        {"kind": "backfill_author", "author_id": 1, "job_id": ""},
        {"kind": "merge_author", "author_id": 1},
        {"kind": "merge_author", "author_id": 1, "reader_id": 2**70},
        {"kind": "refresh_post"},
        {"kind": "refresh_post", "post_id": -7},
    ],
)
def test_malformed_messages_are_refused(body: object) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job(body)
    assert isinstance(caught.value, InvalidInput)  # reported as failed: retried, then DLQ
