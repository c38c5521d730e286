"""The MongoDB (DocumentDB) client and every collection's indexes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pymongo import ASCENDING, DESCENDING

if TYPE_CHECKING:
    from pymongo.database import Database

# Raw engagement events: one collection per UTC day of the events' time (`at`), so retention
# drops whole days; the single collection of earlier releases is read until it is empty.
EVENTS_PREFIX = "engagement_events_"
LEGACY_EVENTS = "engagement_events"
_EVENT_DAY = re.compile(r"^engagement_events_(\d{8})$")


def events_collection(at: datetime) -> str:
    """The collection of the events of `at`'s UTC day."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return f"{EVENTS_PREFIX}{at.astimezone(UTC):%Y%m%d}"


def event_day(name: str) -> datetime | None:
    """The UTC day a collection of events holds (None: not one)."""
    match = _EVENT_DAY.match(name)
    return datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC) if match else None


def ensure_event_days(db: Database, around: datetime) -> None:
    """The collections of the day before, of and after `around`, each with its `at` index:
    created ahead of their writers (a collection a writer creates has no index, and two
    creating it at once race), and the index made on one a writer did create."""
    for days in (-1, 0, 1):
        name = events_collection(around + timedelta(days=days))
        db[name].create_index([("at", ASCENDING)], name="by_time")


def make_database(url: str, name: str, timeout_ms: int = 800) -> Database:
    """Every wait bounded by `timeout_ms`: server selection (down), connect, and each socket
    read (hung)."""
    from pymongo import MongoClient

    client: MongoClient = MongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
        appname="feed",
    )
    return client[name]


def ensure_indexes(db: Database) -> None:
    """Create every collection's indexes; safe to run on every deploy (create_index is
    idempotent for an identical spec)."""
    db.posts.create_index([("author_id", ASCENDING), ("_id", DESCENDING)], name="author_newest")
    db.posts.create_index([("pending", ASCENDING), ("_id", ASCENDING)], name="pending")
    db.likes.create_index([("post_id", ASCENDING)], name="by_post")
    db.likes.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)], name="by_user")
    ensure_event_days(db, datetime.now(UTC))
    # Media by state and age: the sweep of uploads never attached (issue 13, item 4).
    db.media.create_index([("state", ASCENDING), ("created_at", ASCENDING)], name="by_state")
    # The cleanup job's scans: media not yet purged, oldest first; claims not yet confirmed.
    db.media.create_index([("purged_at", ASCENDING), ("created_at", ASCENDING)], name="to_purge")
    db.media.create_index(
        [("claim_confirmed", ASCENDING), ("attached_at", ASCENDING)], name="unconfirmed_claims"
    )
    db.impression_counts.create_index([("hour", ASCENDING)], name="by_hour")
    db.impression_counts.create_index([("updated_at", ASCENDING)], name="by_update")
    db.engagement_stats.create_index(
        [(f, ASCENDING) for f in ("entity", "entity_id", "grain", "start")], name="by_entity"
    )
    db.engagement_stats.create_index([("grain", ASCENDING), ("start", ASCENDING)], name="by_time")
