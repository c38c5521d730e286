"""Engagement events and their rolled-up stats in MongoDB (DocumentDB 5.0 API subset): this
store owns `engagement_events` (written by the services and the buffer drain, read by the
roll-up), `engagement_stats` and the roll-up's watermark.

The grouping runs on the server ($match on the `at` index, then $group by kind, post and
author), so a busy hour comes back as one row per (kind, post) rather than one per event; this
pipeline works on FerretDB 1.x and DocumentDB alike. Stats rows are replaced whole by `_id`
(grain, entity, id, start), which makes every roll-up idempotent. Ids (the events' actor_id,
post_id, author_id; the stats' entity_id) are stored as fixed-width decimal strings, like every
id in MongoDB (see `documents.py`), and are ints again once read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from newsfeed.errors import EngagementStoreUnavailable
from newsfeed.jobs.rollup import COUNTS, EventGroup, StatsRow, bucket_start

from ..translate import StoreBreaker, unavailable_on
from .documents import aware, doc_id, event_doc, from_doc_id
from .errors import UNAVAILABLE_ERRORS

if TYPE_CHECKING:
    from pymongo.database import Database

_STATE_ID = "engagement_rollup"


def stats_id(grain: str, entity: str, entity_id: int, start: datetime) -> str:
    stamp = start.strftime("%Y-%m-%dT%H" if grain == "hour" else "%Y-%m-%d")
    return f"{grain}:{entity}:{doc_id(entity_id)}:{stamp}"


def _maybe_id(value: str | int | None) -> int | None:
    return None if value is None else from_doc_id(value)


def _row(doc: dict[str, Any]) -> StatsRow:
    return StatsRow(
        grain=doc["grain"],
        entity=doc["entity"],
        entity_id=from_doc_id(doc["entity_id"]),
        start=aware(doc["start"]),
        counts={name: int(doc.get(name, 0)) for name in COUNTS},
    )


DUPLICATE_KEY = 11000


@unavailable_on(UNAVAILABLE_ERRORS, EngagementStoreUnavailable)
class MongoEngagementStore:
    def __init__(self, db: Database, breaker: StoreBreaker | None = None) -> None:
        # One breaker per server: the post and engagement stores share it when wired together.
        self.breaker = breaker or StoreBreaker("mongodb")
        self._events = db.engagement_events
        self._stats = db.engagement_stats
        self._state = db.job_state
        self._impressions = db.impression_counts

    def add_impression_counts(
        self, batch: str, hour: datetime, counts: list[tuple[int, int, int]]
    ) -> None:
        """Add one drained batch of impression counts, each (post, author, n), to the hour's
        totals; a batch already added (a drain retried after a crash) adds nothing."""
        now = datetime.now(UTC)
        # One update per post, no bulk upsert: FerretDB 1.x answers a bulk upsert that hits an
        # existing _id without the counts pymongo parses. The drain lock rules out a race.
        for post_id, author_id, n in counts:
            doc = f"{hour:%Y%m%d%H}:{doc_id(post_id)}"
            added = self._impressions.update_one(
                {"_id": doc, "applied": {"$ne": batch}},
                {"$inc": {"count": n}, "$push": {"applied": batch}, "$set": {"updated_at": now}},
            )
            if added.matched_count:
                continue
            # The hour's first count of this post; DuplicateKeyError: it exists and already
            # holds this batch (a retried drain).
            with contextlib.suppress(DuplicateKeyError):
                self._impressions.insert_one(
                    {
                        "_id": doc,
                        "post_id": doc_id(post_id),
                        "author_id": doc_id(author_id),
                        "hour": hour,
                        "count": n,
                        "applied": [batch],
                        "updated_at": now,
                    }
                )

    def record_events(self, events: list[dict[str, Any]]) -> None:
        """Store events; an event whose `_id` is already stored (a retried batch) is skipped."""
        if not events:
            return
        try:
            self._events.insert_many([event_doc(e) for e in events], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise

    def event_hours_stored_since(self, since: datetime) -> set[datetime]:
        """The hours (of `at`) of the events written since `since` (by their ObjectId time)."""
        cursor = self._events.find(
            {"_id": {"$gte": ObjectId.from_datetime(since)}}, {"_id": 0, "at": 1}
        )
        hours = {bucket_start(aware(d["at"]), "hour") for d in cursor if d.get("at")}
        counted = self._impressions.find({"updated_at": {"$gte": since}}, {"_id": 0, "hour": 1})
        return hours | {aware(d["hour"]) for d in counted}

    def event_groups(self, start: datetime, end: datetime) -> list[EventGroup]:
        """Raw events grouped by (kind, post, author), plus the impression counts (drained from
        the timeline store's counters) as impression groups."""
        counted = [
            ("impression", from_doc_id(d["post_id"]), from_doc_id(d["author_id"]), int(d["count"]))
            for d in self._impressions.find({"hour": {"$gte": start, "$lt": end}})
        ]
        return self._raw_event_groups(start, end) + counted

    def _raw_event_groups(self, start: datetime, end: datetime) -> list[EventGroup]:
        pipeline = [
            {"$match": {"at": {"$gte": start, "$lt": end}}},
            {
                "$group": {
                    "_id": {"k": "$kind", "p": "$post_id", "a": "$author_id"},
                    "n": {"$sum": 1},
                }
            },
        ]
        return [
            (
                g["_id"].get("k"),
                _maybe_id(g["_id"].get("p")),
                _maybe_id(g["_id"].get("a")),
                int(g["n"]),
            )
            for g in self._events.aggregate(pipeline)
        ]

    def replace_stats(self, rows: Sequence[StatsRow]) -> None:
        if not rows:
            return
        ops = [
            ReplaceOne(
                {"_id": stats_id(r.grain, r.entity, r.entity_id, r.start)},
                {
                    "grain": r.grain,
                    "entity": r.entity,
                    "entity_id": doc_id(r.entity_id),
                    "start": r.start,
                    **r.counts,
                    "engagement_rate": r.engagement_rate,
                },
                upsert=True,
            )
            for r in rows
        ]
        self._stats.bulk_write(ops, ordered=False)

    def stats_between(self, grain: str, start: datetime, end: datetime) -> list[StatsRow]:
        cursor = self._stats.find({"grain": grain, "start": {"$gte": start, "$lt": end}})
        return [_row(d) for d in cursor]

    def entity_stats(
        self, entity: str, entity_id: int, grain: str, since: datetime
    ) -> list[StatsRow]:
        cursor = self._stats.find(
            {
                "entity": entity,
                "entity_id": doc_id(entity_id),
                "grain": grain,
                "start": {"$gte": since},
            }
        )
        return sorted((_row(d) for d in cursor), key=lambda r: r.start)

    def watermark(self) -> datetime | None:
        doc = self._state.find_one({"_id": _STATE_ID})
        return aware(doc["watermark"]) if doc else None

    def set_watermark(self, at: datetime) -> None:
        self._state.replace_one({"_id": _STATE_ID}, {"watermark": at}, upsert=True)
