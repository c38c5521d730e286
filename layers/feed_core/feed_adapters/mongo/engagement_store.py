"""Engagement events and their rolled-up stats in MongoDB (DocumentDB 5.0 API subset): this
store owns the raw events (written by the services and the buffer drain, read by the roll-up),
`engagement_stats`, `impression_counts` and the roll-up's job state.

Raw events live in one collection per UTC day of their time (`engagement_events_YYYYMMDD`, see
`database.py`): an hour's recompute reads one day's collection, and retention drops whole days
(a collection drop: no per-document delete, on FerretDB, which has no TTL index, as on
DocumentDB). The single `engagement_events` of earlier releases is still read, and its documents
deleted by time as they expire, until it is empty and dropped.

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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from newsfeed.errors import EngagementStoreUnavailable
from newsfeed.jobs.rollup import COUNTS, EventGroup, ExpiredEvents, StatsRow, bucket_start

from ..translate import StoreBreaker, unavailable_on
from .database import LEGACY_EVENTS, ensure_event_days, event_day, events_collection
from .documents import aware, doc_id, event_doc, from_doc_id
from .errors import UNAVAILABLE_ERRORS

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

_STATE_ID = "engagement_rollup"
_RETENTION_ID = "engagement_retention"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


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
        self._db = db
        self._legacy = db[LEGACY_EVENTS]
        # Whether the single collection of earlier releases was there at the last listing
        # (each run lists the collections first; until then, assume it is).
        self._legacy_listed = True
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
        """Store events, each in the collection of its day (one insert per day: one for a
        request's events, but at midnight); an event whose `_id` is already stored (a retried
        batch) is skipped."""
        by_day: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_day.setdefault(events_collection(event["at"]), []).append(event_doc(event))
        for name, docs in by_day.items():
            try:
                self._db[name].insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise

    def ready_for_events(self, around: datetime) -> None:
        """The day collections of the day before, of and after `around`, with their index."""
        ensure_event_days(self._db, around)

    def _event_days(self) -> list[datetime]:
        """The days that have a collection of events, oldest first (one listing, which also
        tells whether the collection of earlier releases is still there)."""
        names = self._db.list_collection_names()
        self._legacy_listed = LEGACY_EVENTS in names
        return sorted(day for day in map(event_day, names) if day is not None)

    def _event_collections(self) -> list[Collection]:
        days = [self._db[events_collection(day)] for day in self._event_days()]
        return days + ([self._legacy] if self._legacy_listed else [])

    def event_hours_stored_since(self, since: datetime) -> set[datetime]:
        """The hours (of `at`) of the events written since `since` (by their ObjectId time),
        in every day's collection: a late event lands in an old day (and in the collection of
        earlier releases while one of them still writes)."""
        hours: set[datetime] = set()
        for events in self._event_collections():
            cursor = events.find({"_id": {"$gte": ObjectId.from_datetime(since)}}, {"at": 1})
            hours |= {bucket_start(aware(d["at"]), "hour") for d in cursor if d.get("at")}
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
        """Each day's collection the window spans (an hour: one), and the collection of earlier
        releases while it was there at the last listing. An event is in exactly one of them."""
        sources = []
        day = bucket_start(start, "day")
        while day < end:
            sources.append(self._db[events_collection(day)])
            day += DAY
        if self._legacy_listed:
            sources.append(self._legacy)
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
            for events in sources
            for g in events.aggregate(pipeline)
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

    # -- retention (newsfeed/jobs/retention.py) ------------------------------------------------

    def events_horizon(self) -> datetime | None:
        doc = self._state.find_one({"_id": _RETENTION_ID})
        return aware(doc["horizon"]) if doc else None

    def expire_events(self, before: datetime, counted_before: datetime) -> ExpiredEvents:
        """Expire the raw events before `before`, up to the first day holding one stored at or
        after `counted_before`: whole day collections dropped, the collection of earlier
        releases and the impression counts deleted an hour of `at` (of `hour`) at a time, each
        range one indexed delete, so no call runs long. The horizon is raised first: a roll-up
        running meanwhile no longer recomputes those hours."""
        current = self.events_horizon()
        horizon = self._countable_until(current, before, counted_before)
        if current is not None and current >= horizon:
            horizon = current  # never back: the hours before it have lost events already
        else:
            self._state.update_one(
                {"_id": _RETENTION_ID}, {"$max": {"horizon": horizon}}, upsert=True
            )
        days = [d for d in self._event_days() if d + DAY <= horizon]
        for day in days:
            self._db[events_collection(day)].drop()
        legacy = 0
        if self._legacy_listed:
            legacy = _delete_by_hour(self._legacy, "at", horizon)
            if self._legacy.find_one({}, {"_id": 1}) is None:
                self._legacy.drop()  # empty: the roll-up stops reading it
                self._legacy_listed = False
        counts = _delete_by_hour(self._impressions, "hour", horizon)
        return ExpiredEvents(horizon, len(days), legacy, counts)

    def _countable_until(
        self, current: datetime | None, before: datetime, counted_before: datetime
    ) -> datetime:
        """`before`, or the first day at or after the current horizon that holds an event or an
        impression count stored since `counted_before` (the roll-up may not have counted it)."""
        uncounted = {"_id": {"$gte": ObjectId.from_datetime(counted_before)}}
        until = before
        for day in self._event_days():
            if day + DAY > until:
                break
            if current is not None and day < current:
                continue  # final already: a late event there is not counted, and goes
            if self._db[events_collection(day)].find_one(uncounted, {"_id": 1}) is not None:
                until = day
                break
        if self._legacy_listed:
            for doc in self._legacy.find(uncounted, {"at": 1}):
                at = aware(doc.get("at"))
                if at is not None and (current is None or at >= current):
                    until = min(until, bucket_start(at, "day"))
        late = {"updated_at": {"$gte": counted_before}, "hour": {"$lt": until}}
        if current is not None:
            late["hour"]["$gte"] = current
        for doc in self._impressions.find(late, {"hour": 1}):
            until = min(until, bucket_start(aware(doc["hour"]), "day"))
        return until


def _delete_by_hour(collection: Collection, field: str, before: datetime) -> int:
    """Delete the documents whose `field` is before `before`, one hour at a time from the
    oldest (found by the field's index), so each delete is a bounded range."""
    deleted = 0
    while True:
        oldest = collection.find_one({field: {"$lt": before}}, {field: 1}, sort=[(field, 1)])
        if oldest is None:
            return deleted
        start = bucket_start(aware(oldest[field]), "hour")
        end = min(start + HOUR, before)
        deleted += collection.delete_many({field: {"$gte": start, "$lt": end}}).deleted_count
