"""Media records in MongoDB's `media` collection (DocumentDB 5.0 API subset: point reads, and
conditional updates on `_id` that are atomic per document). Ids are fixed-width strings
(documents.py says why)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from newsfeed.errors import DuplicateId, MediaStoreUnavailable
from newsfeed.media.service import PENDING, READY, REMOVED
from newsfeed.model import MediaRecord

from ..translate import StoreBreaker, unavailable_on
from .documents import doc_id, media_doc, media_from_doc, media_outcome_fields
from .errors import UNAVAILABLE_ERRORS

if TYPE_CHECKING:
    from pymongo.database import Database


@unavailable_on(UNAVAILABLE_ERRORS, MediaStoreUnavailable)
class MongoMediaStore:
    def __init__(self, db: Database, breaker: StoreBreaker | None = None) -> None:
        # The server's breaker, shared with the post and engagement stores when wired together.
        self.breaker = breaker or StoreBreaker("mongodb")
        self._media = db.media

    def insert_media(self, media: MediaRecord) -> None:
        try:
            self._media.insert_one(media_doc(media))
        except DuplicateKeyError as exc:
            raise DuplicateId(f"media {media.id} exists") from exc

    def get_media(self, media_id: int) -> MediaRecord | None:
        doc = self._media.find_one({"_id": doc_id(media_id)})
        return media_from_doc(doc) if doc else None

    def finish_processing(self, media: MediaRecord) -> bool:
        done = self._media.update_one(
            {"_id": doc_id(media.id), "state": PENDING}, {"$set": media_outcome_fields(media)}
        )
        return done.modified_count == 1

    def claim_for_post(
        self,
        media_id: int,
        owner_id: int,
        post_id: int,
        at: datetime,
        stale_post_id: int | None = None,
    ) -> tuple[MediaRecord, bool] | None:
        claim = {"$set": {"post_id": doc_id(post_id), "attached_at": at, "claim_confirmed": False}}
        ready = {"_id": doc_id(media_id), "owner_id": doc_id(owner_id), "state": READY}
        held_by = (
            {"post_id": doc_id(stale_post_id), "claim_confirmed": False}
            if stale_post_id is not None
            else {"post_id": None}
        )
        doc = self._media.find_one_and_update(
            {**ready, **held_by}, claim, return_document=ReturnDocument.AFTER
        )
        if doc:
            return media_from_doc(doc), True
        if stale_post_id is None:  # a retry of the same post: its claim already
            doc = self._media.find_one({**ready, "post_id": doc_id(post_id)})
            if doc:
                return media_from_doc(doc), False
        return None

    def release_claim(self, media_id: int, post_id: int) -> None:
        self._media.update_one(
            {
                "_id": doc_id(media_id),
                "post_id": doc_id(post_id),
                "state": READY,
                "claim_confirmed": False,
            },
            {"$set": {"post_id": None, "attached_at": None}},
        )

    def confirm_claims(self, media_ids: Sequence[int], post_id: int) -> None:
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
        doc = self._media.find_one_and_update(
            {
                "_id": doc_id(media_id),
                "state": {"$ne": REMOVED},
                "post_id": doc_id(post_id) if post_id is not None else None,
            },
            {"$set": {"state": REMOVED}},
            return_document=ReturnDocument.AFTER,
        )
        return media_from_doc(doc) if doc else None

    def mark_purged(self, media_id: int, at: datetime) -> None:
        self._media.update_one({"_id": doc_id(media_id)}, {"$set": {"purged_at": at}})

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
