"""How domain values are stored in MongoDB: ids as fixed-width strings, posts, events.

Every id-valued field is stored as a fixed-width (19-digit, zero-padded) decimal string, the
same encoding as the Redis members (`ids.to_member`): string order is id order, so sorting by
`_id` and `$lt` ranges keep working. The domain keeps int ids; only this package sees strings.
Why: FerretDB 1.x, the local server, pushes an equality filter down to PostgreSQL only for
strings and numbers exactly representable as doubles (|n| <= 2**53); snowflake ids are ~2.5e17,
so an Int64 `_id` point read scanned the whole collection. MongoDB and DocumentDB index either
type; strings are portable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from newsfeed.ids import to_member
from newsfeed.model import Media, MediaRecord, MediaVariant, Post


def doc_id(value: int) -> str:
    """An id as stored in MongoDB: fixed-width decimal string (string order == id order)."""
    return to_member(value)


def from_doc_id(value: str | int) -> int:
    """An id read from MongoDB (int() also accepts a legacy Int64)."""
    return int(value)


def pair_id(a: int, b: int) -> str:
    """Composite `_id` of two ids (a like is "post:user")."""
    return f"{doc_id(a)}:{doc_id(b)}"


_EVENT_ID_FIELDS = ("actor_id", "post_id", "author_id")


def event_doc(event: dict[str, Any]) -> dict[str, Any]:
    """An engagement event as stored: its id-valued fields as fixed-width strings.

    A buffered event carries `event_id` (32 hex digits) and `at`: its `_id` is then an ObjectId
    made of `at`'s seconds and the id's first 8 bytes, the same on every attempt, so storing a
    batch twice stores each event once (and ObjectId time order still follows `at`).
    """
    doc = {
        k: doc_id(v) if k in _EVENT_ID_FIELDS and isinstance(v, int) else v
        for k, v in event.items()
        if k != "event_id"
    }
    if "event_id" in event:
        seconds = int(event["at"].timestamp())
        doc["_id"] = ObjectId(seconds.to_bytes(4, "big") + bytes.fromhex(event["event_id"])[:8])
    return doc


def post_doc(post: Post) -> dict[str, Any]:
    return {
        "_id": doc_id(post.id),
        "author_id": doc_id(post.author_id),
        "text": post.text,
        "media": [m.to_dict() for m in post.media],
        "created_at": post.created_at,
        "like_count": post.like_count,
        "deleted_at": post.deleted_at,
    }


def post_from_doc(doc: dict[str, Any]) -> Post:
    return Post(
        id=from_doc_id(doc["_id"]),
        author_id=from_doc_id(doc["author_id"]),
        text=doc["text"],
        media=tuple(Media.from_dict(m) for m in doc.get("media") or ()),
        created_at=aware(doc["created_at"]),
        like_count=int(doc.get("like_count", 0)),
        deleted_at=aware(doc.get("deleted_at")),
    )


def media_doc(media: MediaRecord) -> dict[str, Any]:
    return {
        "_id": doc_id(media.id),
        "owner_id": doc_id(media.owner_id),
        "content_type": media.content_type,
        "size_bytes": media.size_bytes,
        "state": media.state,
        "key": media.key,
        "created_at": media.created_at,
        **media_outcome_fields(media),
        "post_id": doc_id(media.post_id) if media.post_id is not None else None,
        "attached_at": media.attached_at,
        "claim_confirmed": media.claim_confirmed,
        "purged_at": media.purged_at,
    }


def media_outcome_fields(media: MediaRecord) -> dict[str, Any]:
    """What processing sets: the state and what came of it."""
    return {
        "state": media.state,
        "content_type": media.content_type,
        "kind": media.kind,
        "width": media.width,
        "height": media.height,
        "placeholder": media.placeholder,
        "variants": [v.to_dict() for v in media.variants],
        "error": media.error,
        "processed_at": media.processed_at,
    }


def media_from_doc(doc: dict[str, Any]) -> MediaRecord:
    created_at = aware(doc["created_at"])
    assert created_at is not None
    post_id = doc.get("post_id")
    return MediaRecord(
        id=from_doc_id(doc["_id"]),
        owner_id=from_doc_id(doc["owner_id"]),
        content_type=doc["content_type"],
        size_bytes=int(doc["size_bytes"]),
        state=doc["state"],
        key=doc["key"],
        created_at=created_at,
        kind=doc.get("kind"),
        width=doc.get("width"),
        height=doc.get("height"),
        placeholder=doc.get("placeholder"),
        variants=tuple(MediaVariant.from_dict(v) for v in doc.get("variants") or ()),
        error=doc.get("error"),
        processed_at=aware(doc.get("processed_at")),
        post_id=from_doc_id(post_id) if post_id is not None else None,
        attached_at=aware(doc.get("attached_at")),
        claim_confirmed=bool(doc.get("claim_confirmed")),
        purged_at=aware(doc.get("purged_at")),
    )


def aware(value: datetime | None) -> datetime | None:
    # FerretDB and some drivers hand back naive UTC datetimes.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_LIVE = {"deleted_at": None}
