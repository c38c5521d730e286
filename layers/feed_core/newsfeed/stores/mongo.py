"""Posts, likes and engagement events in MongoDB (pymongo; DocumentDB 5.0 API subset).

Every id-valued field is stored as a fixed-width (19-digit, zero-padded) decimal string, the
same encoding as the Redis members (`ids.to_member`): string order is id order, so sorting by
`_id` and `$lt` ranges keep working. The domain keeps int ids; only this adapter and
`engagement_mongo.py` see strings. Why: FerretDB 1.x, the local server, pushes an equality
filter down to PostgreSQL only for strings and numbers exactly representable as doubles
(|n| <= 2**53); snowflake ids are ~2.5e17, so an Int64 `_id` point read scanned the whole
collection. It does not push `$in`/`$or` down at all (those scan) and sorts in memory. So
hydration reads a few misses as point reads and only uses `$in` for larger batches; hot paths
stay on the Redis post cache. MongoDB and DocumentDB index either type; strings are portable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ..ids import to_member
from ..models import Media, Post

if TYPE_CHECKING:
    from pymongo.database import Database

    from ..settings import Settings

# Up to this many misses, one `_id` point read each beats one `$in` scan on FerretDB.
POINT_READ_LIMIT = 16


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
DUPLICATE_KEY = 11000


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


def make_database(settings: Settings) -> Database:
    from pymongo import MongoClient

    client: MongoClient = MongoClient(
        settings.mongodb_url,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        socketTimeoutMS=10000,
        appname="feed",
    )
    return client[settings.mongodb_db]


def ensure_indexes(db: Database) -> None:
    """Create every collection's indexes; safe to run on every deploy (create_index is
    idempotent for an identical spec)."""
    db.posts.create_index([("author_id", ASCENDING), ("_id", DESCENDING)], name="author_newest")
    db.likes.create_index([("post_id", ASCENDING)], name="by_post")
    db.likes.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)], name="by_user")
    db.engagement_events.create_index([("at", ASCENDING)], name="by_time")
    from .engagement_mongo import ensure_stats_indexes

    ensure_stats_indexes(db)


def post_from_doc(doc: dict[str, Any]) -> Post:
    return Post(
        id=from_doc_id(doc["_id"]),
        author_id=from_doc_id(doc["author_id"]),
        text=doc["text"],
        media=tuple(Media(url=m["url"], kind=m["kind"]) for m in doc.get("media") or ()),
        created_at=_aware(doc["created_at"]),
        like_count=int(doc.get("like_count", 0)),
        deleted_at=_aware(doc.get("deleted_at")),
    )


def _aware(value: datetime | None) -> datetime | None:
    # FerretDB and some drivers hand back naive UTC datetimes.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_LIVE = {"deleted_at": None}


class MongoPostStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._posts = db.posts
        self._likes = db.likes
        self._events = db.engagement_events

    def claim_post_request(self, author_id: int, key: str, post_id: int) -> int:
        # The unique _id makes the claim atomic. No TTL index: FerretDB 1.x does not implement
        # expireAfterSeconds (DocumentDB does); the records are a few dozen bytes each.
        request_id = f"{doc_id(author_id)}:{key}"
        try:
            self._db.post_requests.insert_one(
                {"_id": request_id, "post_id": doc_id(post_id), "at": datetime.now(UTC)}
            )
            return post_id
        except DuplicateKeyError:
            doc = self._db.post_requests.find_one({"_id": request_id})
            if doc is None:  # claimed and removed in between: claim again
                return self.claim_post_request(author_id, key, post_id)
            return from_doc_id(doc["post_id"])

    def insert_post(self, post: Post) -> None:
        """Raises pymongo DuplicateKeyError on an id collision (the caller retries)."""
        self._posts.insert_one({**post_doc(post), "deleted_at": None})

    def get_post(self, post_id: int) -> Post | None:
        doc = self._posts.find_one({"_id": doc_id(post_id)})
        return post_from_doc(doc) if doc else None

    def get_posts(self, post_ids: Sequence[int]) -> dict[int, Post]:
        """Posts by id (deleted ones included, marked); unknown ids are absent."""
        if not post_ids:
            return {}
        if len(post_ids) <= POINT_READ_LIMIT:
            docs: Iterable[dict[str, Any]] = filter(
                None, (self._posts.find_one({"_id": doc_id(pid)}) for pid in post_ids)
            )
        else:
            docs = self._posts.find({"_id": {"$in": [doc_id(p) for p in post_ids]}})
        return {from_doc_id(d["_id"]): post_from_doc(d) for d in docs}

    def author_post_ids(self, author_id: int, below: int | None, limit: int) -> list[int]:
        """An author's live post ids below `below`, newest first."""
        query: dict[str, Any] = {"author_id": doc_id(author_id), **_LIVE}
        if below is not None:
            query["_id"] = {"$lt": doc_id(below)}
        cursor = self._posts.find(query, {"_id": 1}).sort("_id", DESCENDING).limit(limit)
        return [from_doc_id(d["_id"]) for d in cursor]

    def author_posts(self, author_id: int, below: int | None, limit: int) -> list[Post]:
        query: dict[str, Any] = {"author_id": doc_id(author_id), **_LIVE}
        if below is not None:
            query["_id"] = {"$lt": doc_id(below)}
        cursor = self._posts.find(query).sort("_id", DESCENDING).limit(limit)
        return [post_from_doc(d) for d in cursor]

    def posts_by_authors(
        self, author_ids: Sequence[int], below: int | None, limit: int
    ) -> list[Post]:
        """Newest live posts of several authors: the degraded feed when Redis is down."""
        if not author_ids:
            return []
        query: dict[str, Any] = {"author_id": {"$in": [doc_id(a) for a in author_ids]}, **_LIVE}
        if below is not None:
            query["_id"] = {"$lt": doc_id(below)}
        cursor = self._posts.find(query).sort("_id", DESCENDING).limit(limit)
        return [post_from_doc(d) for d in cursor]

    def mark_deleted(self, post_id: int, at: datetime) -> Post | None:
        """Soft delete (keeps the first deletion time on a retry); returns the post after."""
        self._posts.update_one({"_id": doc_id(post_id), **_LIVE}, {"$set": {"deleted_at": at}})
        return self.get_post(post_id)

    def add_like(self, post_id: int, user_id: int, at: datetime) -> Post | None:
        """Idempotent like. Returns the updated post when a like was added, None if it existed.

        Two writes without a transaction (DocumentDB/FerretDB): a crash between them leaves the
        count one short; the like document is the truth and counts can be recomputed from it."""
        try:
            self._likes.insert_one(
                {
                    "_id": pair_id(post_id, user_id),
                    "post_id": doc_id(post_id),
                    "user_id": doc_id(user_id),
                    "created_at": at,
                }
            )
        except DuplicateKeyError:
            return None
        doc = self._posts.find_one_and_update(
            {"_id": doc_id(post_id)},
            {"$inc": {"like_count": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return post_from_doc(doc) if doc else None

    def remove_like(self, post_id: int, user_id: int) -> Post | None:
        """Idempotent unlike. Returns the updated post when a like was removed."""
        if self._likes.delete_one({"_id": pair_id(post_id, user_id)}).deleted_count == 0:
            return None
        doc = self._posts.find_one_and_update(
            {"_id": doc_id(post_id), "like_count": {"$gt": 0}},
            {"$inc": {"like_count": -1}},
            return_document=ReturnDocument.AFTER,
        )
        return post_from_doc(doc) if doc else self.get_post(post_id)

    def has_liked(self, post_id: int, user_id: int) -> bool:
        return self._likes.find_one({"_id": pair_id(post_id, user_id)}, {"_id": 1}) is not None

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
