"""Media uploads: the caller declares a type and a size, gets a record (pending) and a signed
target that accepts only that: the object key, the type, at most the declared size, for minutes.
The bytes never pass through the API (a Lambda request body is capped at 6 MB, and would cost
the function's time): the client uploads straight to the bucket, and the media function
processes the upload (media.processing) into variants, or refuses it.

A processed medium is attached to at most one post, by its owner; it is removed (its objects
deleted) with that post, or a day after its upload if no post took it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

from ..clock import Clock, utcnow
from ..errors import Conflict, DuplicateId, InvalidInput, NotFound
from ..ids import IdGenerator
from ..model import Media, MediaRecord, Post, UploadTarget
from ..ports import CdnCache, MediaObjects, MediaStore, UploadSigner
from .sniffing import IMAGE_TYPES

log = logging.getLogger(__name__)

# What the processing step takes (from the bytes, whatever is declared); video is not taken yet.
MEDIA_TYPES: tuple[str, ...] = IMAGE_TYPES
PENDING = "pending"
READY = "ready"
FAILED = "failed"
REMOVED = "removed"
MEDIA_STATES: tuple[str, ...] = (PENDING, READY, FAILED, REMOVED)
MAX_MEDIA_PER_POST = 4
UPLOAD_PREFIX = "uploads/"
# A medium no post took in this long is removed (the bucket's lifecycle rule on uploads/ is
# AWS's backstop for the upload itself).
UNATTACHED_DAYS = 1
# A claim by a post that was never stored (its insert failed, and so did the release) is taken
# over after this long: a create in flight is long done.
STALE_CLAIM = timedelta(minutes=10)
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
        objects: MediaObjects | None = None,
        cdn_base: str = "",
        post_exists: Callable[[int], bool] | None = None,
        cdn: CdnCache | None = None,
        clock: Clock = utcnow,
    ) -> None:
        if max_bytes < 1 or upload_seconds < 1:
            raise ValueError("max_bytes and upload_seconds must be positive")
        self._store = store
        self._signer = signer
        self._ids = ids
        self._objects = objects
        self.max_bytes = max_bytes
        self.upload_seconds = upload_seconds
        self.cdn_base = cdn_base.rstrip("/")
        self._post_exists = post_exists
        self._cdn = cdn
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

    # -- attaching to a post --------------------------------------------------------------

    def attach(self, owner_id: int, media_ids: Sequence[int], post_id: int) -> tuple[Media, ...]:
        """Claim the owner's processed media for `post_id` (again: idempotent), in order, and
        return them as the post carries them; nothing is claimed when one is refused: NotFound
        when it is not the owner's (or does not exist), Conflict when it is not processed, was
        refused or removed, or is on another post."""
        ids = tuple(media_ids)
        if len(ids) > MAX_MEDIA_PER_POST:
            raise InvalidInput(f"at most {MAX_MEDIA_PER_POST} media per post")
        if len(set(ids)) != len(ids):
            raise InvalidInput("media_ids must not repeat a medium")
        claimed: list[MediaRecord] = []
        now = self._clock()
        try:
            for media_id in ids:
                record = self._store.claim_for_post(media_id, owner_id, post_id, now)
                if record is None:
                    record = self._take_over_stale_claim(media_id, owner_id, post_id)
                claimed.append(record)
        except BaseException:
            self.release([r.id for r in claimed], post_id)
            raise
        return tuple(self.as_attached(r) for r in claimed)

    def release(self, media_ids: Sequence[int], post_id: int) -> None:
        """Undo `attach` for a post that was not stored. Best effort: a claim left behind is
        taken over once stale."""
        for media_id in media_ids:
            try:
                self._store.release_claim(media_id, post_id)
            except Exception:
                log.warning("claim of media %s by post %s left", media_id, post_id, exc_info=True)

    def _take_over_stale_claim(self, media_id: int, owner_id: int, post_id: int) -> MediaRecord:
        record = self._store.get_media(media_id)
        if record is None or record.owner_id != owner_id:
            raise NotFound(f"media {media_id} not found")
        if record.state == PENDING:
            raise Conflict(
                f"media {media_id} is not processed yet: upload it, then wait until its state "
                "is ready"
            )
        if record.state == FAILED:
            raise Conflict(f"media {media_id} was refused: {record.error}")
        if record.state == REMOVED:
            raise Conflict(f"media {media_id} was removed")
        other = record.post_id
        if (
            other is not None
            and record.attached_at is not None
            and record.attached_at < self._clock() - STALE_CLAIM
            and self._post_exists is not None
            and not self._post_exists(other)
        ):
            taken = self._store.claim_for_post(
                media_id, owner_id, post_id, self._clock(), stale_post_id=other
            )
            if taken is not None:
                return taken
        raise Conflict(f"media {media_id} is attached to another post")

    def as_attached(self, record: MediaRecord) -> Media:
        """The medium as a post carries it: every variant's URL on the CDN; the post's `url`
        is the display variant's."""
        variants = tuple(replace(v, url=f"{self.cdn_base}/{v.key}") for v in record.variants)
        display = next((v for v in variants if v.name == "display"), variants[-1])
        return Media(
            url=display.url,
            kind=record.kind or "image",
            id=record.id,
            width=record.width,
            height=record.height,
            placeholder=record.placeholder,
            variants=variants,
        )

    # -- removal ----------------------------------------------------------------------------

    def remove_post_media(self, post: Post) -> int:
        """Delete the objects of a deleted post's media (idempotent); returns how many media."""
        removed = 0
        for item in post.media:
            if item.id is None:
                continue  # a URL from before uploads: not in this bucket
            record = self._store.get_media(item.id)
            if record is None or record.post_id != post.id or record.purged_at is not None:
                continue
            self._purge(record)
            removed += 1
        return removed

    def remove_unattached(self, limit: int = 500) -> int:
        """Remove media no post took within UNATTACHED_DAYS of their upload (and finish
        removals a fault interrupted); returns how many."""
        cutoff = self._clock() - timedelta(days=UNATTACHED_DAYS)
        removed = 0
        for record in self._store.media_to_purge(cutoff, limit):
            # Removed first, atomically against an attach (which takes only ready media)...
            if record.state != REMOVED and not self._store.mark_removed(record.id, None):
                continue
            self._purge(record)
            removed += 1
        return removed

    def _purge(self, record: MediaRecord) -> None:
        if record.state != REMOVED and record.post_id is not None:
            self._store.mark_removed(record.id, record.post_id)
        if self._objects is None:
            raise RuntimeError("MediaService was built without the media bucket's objects")
        # ...then the objects; the record is marked purged only once they are gone, so an
        # interrupted removal is found and finished by the next cleanup run.
        self._objects.delete([record.key, *(v.key for v in record.variants)])
        if self._cdn is not None and record.post_id is not None and record.variants:
            # A post published its URLs; edges may hold them for a year. (An unattached
            # medium's URLs were shown to its owner only.)
            self._cdn.invalidate([f"/media/{record.id}/*"], reference=f"media-{record.id}")
        self._store.mark_purged(record.id, self._clock())
