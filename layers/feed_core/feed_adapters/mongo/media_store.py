"""Media records in MongoDB's `media` collection, and who may change them in `media_locks`
(DocumentDB 5.0 API subset: point reads, inserts, updates by `_id`). Ids are fixed-width
strings (documents.py says why).

Every exclusive step is decided by inserting a lock document under a unique `_id`, never by a
conditional update: FerretDB 1.x runs an update as a read then a write, so two concurrent
`update_one({"_id": x, "state": "pending"}, ...)` both match (measured: both won in 88-90% of
200 trials of two threads). An insert's unique `_id` is atomic on FerretDB (PostgreSQL's
primary key), DocumentDB and MongoDB alike. Two locks per medium:
- `<id>:settle`: the one way out of pending, processing's outcome (ready or failed) or the
  cleanup's removal of an upload that never came;
- `<id>:post`: the one post the medium is on (`post_id`, `confirmed`), or `removed` by the
  cleanup. The lock is the truth; the record's `post_id` and `claim_confirmed` follow it.
Both are deleted once the medium's objects are purged (a removed record is never claimed or
processed again).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from newsfeed.errors import DuplicateId, MediaStoreUnavailable
from newsfeed.media.service import PENDING, READY, REMOVED
from newsfeed.model import MediaRecord

from ..translate import StoreBreaker, unavailable_on
from .documents import doc_id, media_doc, media_from_doc, media_outcome_fields
from .errors import UNAVAILABLE_ERRORS

if TYPE_CHECKING:
    from pymongo.database import Database

# The `post_id` of a `<id>:post` lock taken by the cleanup's removal of an unattached medium.
REMOVED_LOCK = "removed"


def _settle_lock(media_id: int) -> str:
    return f"{doc_id(media_id)}:settle"


def _post_lock(media_id: int) -> str:
    return f"{doc_id(media_id)}:post"


@unavailable_on(UNAVAILABLE_ERRORS, MediaStoreUnavailable)
class MongoMediaStore:
    def __init__(self, db: Database, breaker: StoreBreaker | None = None) -> None:
        # The server's breaker, shared with the post and engagement stores when wired together.
        self.breaker = breaker or StoreBreaker("mongodb")
        self._media = db.media
        self._locks = db.media_locks

    def _take(self, lock_id: str, **fields: Any) -> bool:
        try:
            self._locks.insert_one({"_id": lock_id, **fields})
        except DuplicateKeyError:
            return False
        return True

    def insert_media(self, media: MediaRecord) -> None:
        try:
            self._media.insert_one(media_doc(media))
        except DuplicateKeyError as exc:
            raise DuplicateId(f"media {media.id} exists") from exc

    def get_media(self, media_id: int) -> MediaRecord | None:
        doc = self._media.find_one({"_id": doc_id(media_id)})
        return media_from_doc(doc) if doc else None

    def finish_processing(self, media: MediaRecord) -> bool:
        if not self._take(_settle_lock(media.id), at=datetime.now(UTC)):
            return False  # another run finished it, or the cleanup removed it
        self._media.update_one({"_id": doc_id(media.id)}, {"$set": media_outcome_fields(media)})
        return True

    def claim_for_post(
        self,
        media_id: int,
        owner_id: int,
        post_id: int,
        at: datetime,
        stale_post_id: int | None = None,
    ) -> tuple[MediaRecord, bool] | None:
        doc = self._media.find_one(
            {"_id": doc_id(media_id), "owner_id": doc_id(owner_id), "state": READY}
        )
        if doc is None:
            return None
        lock_id = _post_lock(media_id)
        if stale_post_id is not None:
            # Let go of the stale claim; the insert below decides among takers.
            self._locks.delete_one(
                {"_id": lock_id, "post_id": doc_id(stale_post_id), "confirmed": False}
            )
        claim = {"post_id": doc_id(post_id), "attached_at": at, "claim_confirmed": False}
        if self._take(lock_id, post_id=doc_id(post_id), confirmed=False, at=at):
            self._media.update_one({"_id": doc_id(media_id)}, {"$set": claim})
            return media_from_doc({**doc, **claim}), True
        if stale_post_id is None:  # a retry of the same post: its claim already
            lock = self._locks.find_one({"_id": lock_id})
            if lock is not None and lock.get("post_id") == doc_id(post_id):
                held = {
                    **claim,
                    "attached_at": lock.get("at"),
                    "claim_confirmed": lock["confirmed"],
                }
                return media_from_doc({**doc, **held}), False
        return None

    def release_claim(self, media_id: int, post_id: int) -> None:
        lock_id = _post_lock(media_id)
        lock = self._locks.find_one({"_id": lock_id})
        if lock is None or lock.get("post_id") != doc_id(post_id) or lock.get("confirmed"):
            return
        # The record first: until the lock goes, a claim racing in is still refused.
        self._media.update_one(
            {"_id": doc_id(media_id), "post_id": doc_id(post_id)},
            {"$set": {"post_id": None, "attached_at": None}},
        )
        self._locks.delete_one({"_id": lock_id, "post_id": doc_id(post_id), "confirmed": False})

    def confirm_claims(self, media_ids: Sequence[int], post_id: int) -> None:
        locks = [_post_lock(m) for m in media_ids]
        self._locks.update_many(
            {"_id": {"$in": locks}, "post_id": doc_id(post_id)}, {"$set": {"confirmed": True}}
        )
        self._media.update_many(
            {"_id": {"$in": [doc_id(m) for m in media_ids]}, "post_id": doc_id(post_id)},
            {"$set": {"claim_confirmed": True}},
        )

    def unconfirmed_claims(self, attached_before: datetime, limit: int) -> list[MediaRecord]:
        docs = self._media.find(
            {"claim_confirmed": False, "attached_at": {"$lt": attached_before}},
            limit=limit,
        ).sort("attached_at", ASCENDING)
        return [media_from_doc(d) for d in docs]

    def mark_removed(self, media_id: int, post_id: int | None) -> MediaRecord | None:
        doc = self._media.find_one({"_id": doc_id(media_id)})
        if doc is None or doc["state"] == REMOVED:
            return None
        if post_id is not None:
            # The post's own medium: its lock names the post, so nobody else changes it.
            lock = self._locks.find_one({"_id": _post_lock(media_id)})
            if lock is None or lock.get("post_id") != doc_id(post_id):
                return None
        elif doc.get("post_id") is not None:
            return None
        elif doc["state"] == PENDING:
            if not self._take(_settle_lock(media_id), at=datetime.now(UTC)):
                return None  # processed meanwhile: the next run sees it ready or failed
        elif not self._take(_post_lock(media_id), post_id=REMOVED_LOCK, confirmed=True):
            return None  # attached meanwhile
        self._media.update_one({"_id": doc_id(media_id)}, {"$set": {"state": REMOVED}})
        after = self._media.find_one({"_id": doc_id(media_id)})
        return media_from_doc(after) if after else None

    def mark_purged(self, media_id: int, at: datetime) -> None:
        self._media.update_one({"_id": doc_id(media_id)}, {"$set": {"purged_at": at}})
        # A removed record is never claimed or processed again: its locks have done their job.
        self._locks.delete_many({"_id": {"$in": [_settle_lock(media_id), _post_lock(media_id)]}})

    def media_to_purge(self, created_before: datetime, limit: int) -> list[MediaRecord]:
        docs = self._media.find(
            {
                "purged_at": None,
                "$or": [
                    {"post_id": None, "created_at": {"$lt": created_before}},
                    {"state": REMOVED},
                ],
            },
            limit=limit,
        ).sort("created_at", ASCENDING)
        return [media_from_doc(d) for d in docs]
