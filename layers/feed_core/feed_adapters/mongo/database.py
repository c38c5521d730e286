"""The MongoDB (DocumentDB) client and every collection's indexes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymongo import ASCENDING, DESCENDING

if TYPE_CHECKING:
    from pymongo.database import Database


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
    db.engagement_events.create_index([("at", ASCENDING)], name="by_time")
    db.impression_counts.create_index([("hour", ASCENDING)], name="by_hour")
    db.impression_counts.create_index([("updated_at", ASCENDING)], name="by_update")
    db.engagement_stats.create_index(
        [(f, ASCENDING) for f in ("entity", "entity_id", "grain", "start")], name="by_entity"
    )
    db.engagement_stats.create_index([("grain", ASCENDING), ("start", ASCENDING)], name="by_time")
