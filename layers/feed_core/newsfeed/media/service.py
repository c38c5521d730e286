"""Media uploads: the caller declares a type and a size, gets a record (pending) and a signed
target that accepts only that: the object key, the type, at most the declared size, for minutes.

The bytes never pass through the API (a Lambda request body is capped at 6 MB, and would cost
the function's time): the client uploads straight to the bucket.
"""

from __future__ import annotations

from ..clock import Clock, utcnow
from ..errors import DuplicateId, InvalidInput, NotFound
from ..ids import IdGenerator
from ..model import MediaRecord, UploadTarget
from ..ports import MediaStore, UploadSigner

# What the processing step (issue 13, item 2) will accept; video is not taken yet.
MEDIA_TYPES: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp", "image/gif")
PENDING = "pending"
UPLOAD_PREFIX = "uploads/"
_ID_ATTEMPTS = 3


def upload_key(owner_id: int, media_id: int) -> str:
    """The object key of an upload: per owner, so a policy or a listing can scope to one."""
    return f"{UPLOAD_PREFIX}{owner_id}/{media_id}"


class MediaService:
    def __init__(
        self,
        store: MediaStore,
        signer: UploadSigner,
        ids: IdGenerator,
        *,
        max_bytes: int,
        upload_seconds: int,
        clock: Clock = utcnow,
    ) -> None:
        if max_bytes < 1 or upload_seconds < 1:
            raise ValueError("max_bytes and upload_seconds must be positive")
        self._store = store
        self._signer = signer
        self._ids = ids
        self.max_bytes = max_bytes
        self.upload_seconds = upload_seconds
        self._clock = clock

    def create_upload(
        self, owner_id: int, content_type: str, size_bytes: int
    ) -> tuple[MediaRecord, UploadTarget]:
        """A pending record and its upload target. InvalidInput for a type not taken or a size
        outside 1..max_bytes."""
        if content_type not in MEDIA_TYPES:
            raise InvalidInput(f"content_type must be one of {', '.join(MEDIA_TYPES)}")
        if not 1 <= size_bytes <= self.max_bytes:
            raise InvalidInput(f"size_bytes must be between 1 and {self.max_bytes}")
        for attempt in range(_ID_ATTEMPTS):
            media_id = self._ids.next_id()
            record = MediaRecord(
                id=media_id,
                owner_id=owner_id,
                content_type=content_type,
                size_bytes=size_bytes,
                state=PENDING,
                key=upload_key(owner_id, media_id),
                created_at=self._clock(),
            )
            try:
                self._store.insert_media(record)
                break
            except DuplicateId:  # a snowflake collision across processes: a new id
                if attempt == _ID_ATTEMPTS - 1:
                    raise
        # Signed after the record exists: a target never points at a key nobody tracks.
        target = self._signer.upload_target(
            record.key, content_type, size_bytes, self.upload_seconds
        )
        return record, target

    def get(self, owner_id: int, media_id: int) -> MediaRecord:
        """The caller's medium. Another owner's is NotFound too: whether an id exists is not
        the caller's to learn."""
        record = self._store.get_media(media_id)
        if record is None or record.owner_id != owner_id:
            raise NotFound(f"media {media_id} not found")
        return record
