"""Posts and likes in MongoDB (pymongo; DocumentDB 5.0 API subset).

FerretDB does not push `$in`/`$or` down at all (those scan) and sorts in memory, so hydration
reads a few misses as point reads and only uses `$in` for larger batches; hot paths stay on the
Redis post cache. Ids are stored as fixed-width strings (documents.py says why).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from newsfeed.errors import DuplicateId, NotFound, PostStoreUnavailable
from newsfeed.model import Post

from ..translate import StoreBreaker, unavailable_on
from .documents import aware, doc_id, from_doc_id, pair_id, post_doc, post_from_doc
from .errors import UNAVAILABLE_ERRORS

if TYPE_CHECKING:
    from pymongo.database import Database

# Up to this many misses, one `_id` point read each beats one `$in` scan on FerretDB.
POINT_READ_LIMIT = 16

_LIVE = {"deleted_at": None}
# Follow-up work a post document carries until it is done (the outbox is the document itself):
# a new post is pending delivery until its fan-out job ran, a deleted one pending retraction.
DELIVER, RETRACT = "deliver", "retract"


@unavailable_on(UNAVAILABLE_ERRORS, PostStoreUnavailable)
class MongoPostStore:
    def __init__(self, db: Database, breaker: StoreBreaker | None = None) -> None:
        # One breaker per server: the post and engagement stores share it when wired together.
        self.breaker = breaker or StoreBreaker("mongodb")
        self._db = db
        self._posts = db.posts
        self._likes = db.likes

    @property
    def database(self) -> Database:
        """The database it writes to (the composition root wires the other stores to it)."""
        return self._db

    def claim_post_request(
        self, author_id: int, key: str, post_id: int, *, expired_before: datetime | None = None
    ) -> int:
        # The unique _id makes the claim atomic; an expired claim is taken over by a conditional
        # update (two requests racing for it: one update matches, the other reads the winner).
        # No TTL index: FerretDB 1.x does not implement expireAfterSeconds (DocumentDB does),
        # so the cleanup job deletes old claims (`expire_post_requests`) on both.
        request_id = f"{doc_id(author_id)}:{key}"
        claim = {"post_id": doc_id(post_id), "at": datetime.now(UTC)}
        try:
            self._db.post_requests.insert_one({"_id": request_id, **claim})
            return post_id
        except DuplicateKeyError:
            pass
        if expired_before is not None:
            taken = self._db.post_requests.update_one(
                {"_id": request_id, "at": {"$lt": expired_before}}, {"$set": claim}
            )
            if taken.modified_count == 1:
                return post_id
        doc = self._db.post_requests.find_one({"_id": request_id})
        if doc is None:  # claimed and removed in between: claim again
            return self.claim_post_request(author_id, key, post_id, expired_before=expired_before)
        return from_doc_id(doc["post_id"])

    def expire_post_requests(self, before: datetime) -> int:
        return self._db.post_requests.delete_many({"at": {"$lt": before}}).deleted_count

    def insert_post(self, post: Post) -> None:
        """Stored pending delivery (see `pending_posts`). Raises DuplicateId on an id
        collision (the caller retries)."""
        try:
            self._posts.insert_one({**post_doc(post), "deleted_at": None, "pending": DELIVER})
        except DuplicateKeyError as exc:
            raise DuplicateId(f"post {post.id} exists") from exc

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
        """Soft delete, pending retraction (keeps the first deletion time on a retry); returns
        the post after. A delivery still pending is superseded: the post is never pushed."""
        self._posts.update_one(
            {"_id": doc_id(post_id), **_LIVE}, {"$set": {"deleted_at": at, "pending": RETRACT}}
        )
        return self.get_post(post_id)

    def clear_pending(self, post_id: int, follow_up: str) -> None:
        self._posts.update_one(
            {"_id": doc_id(post_id), "pending": follow_up}, {"$unset": {"pending": ""}}
        )

    def pending_posts(self, follow_up: str, below_id: int, limit: int) -> list[Post]:
        """Posts whose `follow_up` ("deliver" or "retract") has not been done, with ids below
        `below_id` (older than the requests that may still be doing it), oldest first (tests
        and tooling; the repair job claims them with `claim_pending_posts`)."""
        return [post_from_doc(d) for d in self._pending(follow_up, below_id, limit)]

    def _pending(self, follow_up: str, below_id: int, limit: int) -> Iterable[dict[str, Any]]:
        return (
            self._posts.find({"pending": follow_up, "_id": {"$lt": doc_id(below_id)}})
            .sort("_id", ASCENDING)
            .limit(limit)
        )

    def claim_pending_posts(
        self, follow_up: str, below_id: int, limit: int, grace_seconds: int
    ) -> list[Post]:
        """`pending_posts` not claimed in the last `grace_seconds`, each marked claimed now: a
        post whose re-queued job is merely slow is not re-queued again at every run."""
        now = datetime.now(UTC)
        claimed = []
        for doc in self._pending(follow_up, below_id, limit):
            last = aware(doc.get("claimed_at"))
            if last is not None and (now - last).total_seconds() < grace_seconds:
                continue
            # One point update each (FerretDB scans for `$in`); only stuck posts get here.
            self._posts.update_one({"_id": doc["_id"]}, {"$set": {"claimed_at": now}})
            claimed.append(post_from_doc(doc))
        return claimed

    def add_like(self, post_id: int, user_id: int, at: datetime) -> Post | None:
        """Idempotent like of a live post. Returns the updated post when a like was added, None
        if it existed; NotFound when the post does not exist or is deleted (the like is undone:
        a deleted post never gains a like, whatever a stale cache said).

        Two writes without a transaction (DocumentDB/FerretDB): a crash between them leaves the
        count one short; the like document is the truth and counts can be recomputed from it."""
        like_id = pair_id(post_id, user_id)
        try:
            self._likes.insert_one(
                {
                    "_id": like_id,
                    "post_id": doc_id(post_id),
                    "user_id": doc_id(user_id),
                    "created_at": at,
                }
            )
        except DuplicateKeyError:
            return None
        doc = self._posts.find_one_and_update(
            {"_id": doc_id(post_id), **_LIVE},
            {"$inc": {"like_count": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            self._likes.delete_one({"_id": like_id})
            raise NotFound(f"post {post_id} not found")
        return post_from_doc(doc)

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
