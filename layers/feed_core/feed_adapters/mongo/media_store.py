"""Media records in MongoDB's `media` collection (DocumentDB 5.0 API subset: insert and `_id`
point reads only). Ids are fixed-width strings (documents.py says why)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymongo.errors import DuplicateKeyError

from newsfeed.errors import DuplicateId, MediaStoreUnavailable
from newsfeed.model import MediaRecord

from ..translate import StoreBreaker, unavailable_on
from .documents import doc_id, media_doc, media_from_doc
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
