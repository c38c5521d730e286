"""Fan-out jobs: one SQS message each, typed here and parsed strictly at the edge of the handler.

Wire shapes (JSON objects; unchanged since the first release, so messages in flight during a
deploy still parse):
  {"kind": "fanout", "author_id", "post_id"}                                 head: plans chunks
  {"kind": "fanout", "author_id", "post_id", "after_id", "upto_id", "chunk", "chunks", "as_of"?}
  {"kind": "retract", ... the same two shapes ...}                           post deleted
  {"kind": "backfill_author", "author_id", "job_id"}                         pull -> push
  {"kind": "backfill_author", "author_id", "job_id", "after_id", "upto_id", "chunk", "chunks",
   "plan"}
  {"kind": "merge_author", "reader_id", "author_id"}                         follow follow-up
  {"kind": "refresh_post", "post_id"}                                        cache follow-up

A chunk covers the followers with ids in (after_id, upto_id]. `as_of` (optional, every chunk
kind; absent in messages of earlier releases): when the head job read the follower list it
planned from, in Unix milliseconds; a chunk may read its range from a copy of the graph (a read
replica) that holds every change committed before then. Anything else (an unknown kind, a
missing or mistyped field, an id out of range, an empty range) is `InvalidJob`: the handler
reports the message as failed, so SQS retries it and then moves it to the dead-letter queue.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from ..errors import InvalidInput
from ..ids import MAX_ID

_JOB_ID = re.compile(r"[0-9a-f]{1,64}")
_MAX_CHUNKS = 1 << 20


class InvalidJob(InvalidInput):
    code = "invalid_job"


@dataclass(frozen=True, slots=True)
class ChunkRange:
    """Followers with ids in (after_id, upto_id], chunk `chunk` of `chunks`, as the head job
    saw them at `as_of` (Unix ms; 0: unknown, read them from the store of record)."""

    after_id: int
    upto_id: int
    chunk: int
    chunks: int
    as_of: int = 0


@dataclass(frozen=True, slots=True)
class PushPost:
    """Head job of a new post: plan the chunks (or run the only one) and push to followers."""

    kind: ClassVar[str] = "fanout"
    author_id: int
    post_id: int


@dataclass(frozen=True, slots=True)
class PushPostChunk:
    kind: ClassVar[str] = "fanout"
    author_id: int
    post_id: int
    span: ChunkRange


@dataclass(frozen=True, slots=True)
class RetractPost:
    """Head job of a deleted post: remove it from every follower's timeline."""

    kind: ClassVar[str] = "retract"
    author_id: int
    post_id: int


@dataclass(frozen=True, slots=True)
class RetractPostChunk:
    kind: ClassVar[str] = "retract"
    author_id: int
    post_id: int
    span: ChunkRange


@dataclass(frozen=True, slots=True)
class BackfillAuthor:
    """Head job of an author who fell below the celebrity threshold (pull -> push_pending):
    push their recent posts to active followers, then switch them to push."""

    kind: ClassVar[str] = "backfill_author"
    author_id: int
    job_id: str


@dataclass(frozen=True, slots=True)
class BackfillAuthorChunk:
    kind: ClassVar[str] = "backfill_author"
    author_id: int
    job_id: str
    span: ChunkRange
    # Which planning of the job this chunk belongs to: a head run twice (redelivered, or
    # re-queued by repair) plans chunks of other boundaries, and completion counts one plan.
    plan: str = ""


@dataclass(frozen=True, slots=True)
class MergeAuthor:
    """Follow-up of a follow whose timeline merge failed (the timeline store was unavailable):
    the followee's recent posts into the follower's timeline, if the follow still stands."""

    kind: ClassVar[str] = "merge_author"
    reader_id: int
    author_id: int


@dataclass(frozen=True, slots=True)
class RefreshPost:
    """Follow-up of a change to a post (a like) whose cache refresh failed: re-cache the
    post's body from the post store, so the cache does not serve the old one until its TTL."""

    kind: ClassVar[str] = "refresh_post"
    post_id: int


HeadJob = PushPost | RetractPost | BackfillAuthor
ChunkJob = PushPostChunk | RetractPostChunk | BackfillAuthorChunk
RepairJob = MergeAuthor | RefreshPost
FanoutJob = HeadJob | ChunkJob | RepairJob

_CHUNK_OF: dict[type, type] = {
    PushPost: PushPostChunk,
    RetractPost: RetractPostChunk,
    BackfillAuthor: BackfillAuthorChunk,
}


def chunk_jobs(
    head: HeadJob, ranges: list[tuple[int, int]], plan: str = "", as_of: int = 0
) -> list[ChunkJob]:
    """One chunk job per (after_id, upto_id] range, numbered for completion tracking, read
    by the head at `as_of`; a backfill's chunks also carry `plan` (see BackfillAuthorChunk)."""
    chunk_type = _CHUNK_OF[type(head)]
    fields = dict(asdict(head))
    if chunk_type is BackfillAuthorChunk:
        fields["plan"] = plan
    return [
        chunk_type(**fields, span=ChunkRange(after, upto, i, len(ranges), as_of))
        for i, (after, upto) in enumerate(ranges)
    ]


def to_message(job: FanoutJob) -> dict[str, Any]:
    """The job's wire shape (see the module docstring)."""
    body: dict[str, Any] = {"kind": job.kind}
    for name, value in asdict(job).items():
        if name == "span":
            # Chunks of earlier releases had no as_of: 0 is left out, as it was.
            body.update({k: v for k, v in value.items() if k != "as_of" or v})
        elif name != "plan" or value:  # chunks of earlier releases had no plan
            body[name] = value
    return body


def _id(body: dict[str, Any], name: str, *, low: int = 1) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidJob(f"fan-out job field {name!r} is missing or not an integer")
    if not low <= value <= MAX_ID:
        raise InvalidJob(f"fan-out job field {name!r} is out of range")
    return value


def _span(body: dict[str, Any]) -> ChunkRange:
    after, upto = _id(body, "after_id", low=0), _id(body, "upto_id")
    if upto <= after:
        raise InvalidJob("fan-out chunk range is empty (upto_id <= after_id)")
    chunk, chunks = body.get("chunk", 0), body.get("chunks", 1)
    for name, value in (("chunk", chunk), ("chunks", chunks)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidJob(f"fan-out job field {name!r} is not an integer")
    if not 0 <= chunk < chunks <= _MAX_CHUNKS:
        raise InvalidJob("fan-out chunk number out of range")
    as_of = body.get("as_of", 0)
    if not isinstance(as_of, int) or isinstance(as_of, bool) or not 0 <= as_of <= MAX_ID:
        raise InvalidJob("fan-out job field 'as_of' must be Unix milliseconds")
    return ChunkRange(after, upto, chunk, chunks, as_of)


def parse_job(body: Any) -> FanoutJob:
    """A typed job from a decoded message body; `InvalidJob` for anything malformed."""
    if not isinstance(body, dict):
        raise InvalidJob(f"fan-out job must be a JSON object, got {type(body).__name__}")
    kind = body.get("kind")
    if kind == "refresh_post":
        return RefreshPost(_id(body, "post_id"))
    author_id = _id(body, "author_id")
    if kind == "merge_author":
        return MergeAuthor(reader_id=_id(body, "reader_id"), author_id=author_id)
    chunked = "upto_id" in body or "after_id" in body
    if kind in ("fanout", "retract"):
        post_id = _id(body, "post_id")
        if kind == "fanout":
            return (
                PushPostChunk(author_id, post_id, _span(body))
                if chunked
                else PushPost(author_id, post_id)
            )
        return (
            RetractPostChunk(author_id, post_id, _span(body))
            if chunked
            else RetractPost(author_id, post_id)
        )
    if kind == "backfill_author":
        job_id = body.get("job_id")
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise InvalidJob("fan-out job field 'job_id' must be 1-64 lowercase hex digits")
        if chunked:
            plan = body.get("plan", "")
            if not isinstance(plan, str) or (plan and not _JOB_ID.fullmatch(plan)):
                raise InvalidJob("fan-out job field 'plan' must be lowercase hex digits")
            return BackfillAuthorChunk(author_id, job_id, _span(body), plan)
        return BackfillAuthor(author_id, job_id)
    raise InvalidJob(f"unknown fan-out job kind: {kind!r}"[:200])
