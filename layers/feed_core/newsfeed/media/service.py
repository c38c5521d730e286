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
from ..errors import CdnUnavailable, Conflict, DuplicateId, InvalidInput, NotFound
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
    #
    # A claim is made before the post is inserted (so two posts cannot take one medium) and
    # confirmed once the post is known stored; only an unconfirmed claim is ever let go. A
    # claim whose post's insert failed ambiguously (it may have landed) is left unconfirmed:
    # the cleanup job confirms it if the post exists, else lets it go (settle_claims).

    def attach(
        self,
        owner_id: int,
        media_ids: Sequence[int],
        post_id: int,
        *,
        release_on_failure: bool = True,
    ) -> tuple[Media, ...]:
        """Claim the owner's processed media for `post_id` (again: idempotent), in order, and
        return them as the post carries them. NotFound when one is not the owner's (or does
        not exist), Conflict when it is not processed, was refused or removed, or is on another
        post; the claims this call made are then let go, unless `release_on_failure` is False
        (a request retried with the same Idempotency-Key may be using them at the same time)."""
        ids = tuple(media_ids)
        if len(ids) > MAX_MEDIA_PER_POST:
            raise InvalidInput(f"at most {MAX_MEDIA_PER_POST} media per post")
        if len(set(ids)) != len(ids):
            raise InvalidInput("media_ids must not repeat a medium")
        claimed: list[MediaRecord] = []
        made: list[int] = []
        now = self._clock()
        try:
            for media_id in ids:
                result = self._store.claim_for_post(media_id, owner_id, post_id, now)
                if result is None:
                    result = self._take_over_stale_claim(media_id, owner_id, post_id)
                record, newly = result
                claimed.append(record)
                if newly:
                    made.append(record.id)
        except BaseException:
            if release_on_failure:
                self.release(made, post_id)
            raise
        return tuple(self.as_attached(r) for r in claimed)

    def confirm(self, media_ids: Sequence[int], post_id: int) -> None:
        """The post is stored: its claims hold for good. Best effort: the cleanup job confirms
        a claim this missed."""
        if not media_ids:
            return
        try:
            self._store.confirm_claims(media_ids, post_id)
        except Exception:
            log.warning("claims of post %s left unconfirmed", post_id, exc_info=True)

    def release(self, media_ids: Sequence[int], post_id: int) -> None:
        """Undo `attach` for a post that is known not stored. Best effort: a claim left behind
        is settled by the cleanup job, or taken over once stale."""
        for media_id in media_ids:
            try:
                self._store.release_claim(media_id, post_id)
            except Exception:
                log.warning("claim of media %s by post %s left", media_id, post_id, exc_info=True)

    def settle_claims(self, limit: int = 1000) -> int:
        """Unconfirmed claims older than STALE_CLAIM: confirmed if their post exists, else let
        go (they are then on no post, and removed a day after their upload like any other).
        Returns how many were let go."""
        if self._post_exists is None:
            return 0
        released = 0
        for record in self._store.unconfirmed_claims(self._clock() - STALE_CLAIM, limit):
            assert record.post_id is not None
            if self._post_exists(record.post_id):
                self._store.confirm_claims([record.id], record.post_id)
            else:
                self._store.release_claim(record.id, record.post_id)
                released += 1
        return released

    def _take_over_stale_claim(
        self, media_id: int, owner_id: int, post_id: int
    ) -> tuple[MediaRecord, bool]:
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
            and not record.claim_confirmed
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
    #
    # Removed first (atomically: an attach takes only ready media), then the objects, then the
    # CDN's copies, then `purged_at`: an interrupted removal is found by the cleanup job
    # (removed, not purged) and finished.

    def remove_post_media(self, post: Post) -> int:
        """Delete the objects of a deleted post's media (idempotent); returns how many media.
        A bucket fault raises (the retract job is delivered again); a CDN fault leaves the
        medium unpurged for the cleanup job, so the job is not failed for it."""
        removed = 0
        for item in post.media:
            if item.id is None:
                continue  # a URL from before uploads: not in this bucket
            record = self._store.get_media(item.id)
            if record is None or record.post_id != post.id or record.purged_at is not None:
                continue
            if record.state != REMOVED:
                record = self._store.mark_removed(record.id, post.id) or record
            self._purge(record)
            removed += 1
        return removed

    def remove_unattached(self, limit: int = 10_000, batch: int = 500) -> int:
        """Remove media no post took within UNATTACHED_DAYS of their upload, oldest first, and
        finish removals a fault interrupted; returns how many. A medium whose removal fails is
        left for the next run; the others go on."""
        cutoff = self._clock() - timedelta(days=UNATTACHED_DAYS)
        removed = seen = 0
        skipped: set[int] = set()
        while seen < limit:
            records = [
                r
                for r in self._store.media_to_purge(cutoff, batch + len(skipped))
                if r.id not in skipped
            ][:batch]
            if not records:
                break
            for record in records:
                seen += 1
                try:
                    if self._remove_unattached_one(record):
                        removed += 1
                    else:
                        skipped.add(record.id)
                except Exception:
                    log.warning("media %s not removed; next run", record.id, exc_info=True)
                    skipped.add(record.id)
        return removed

    def _remove_unattached_one(self, record: MediaRecord) -> bool:
        if record.state != REMOVED:
            # The record as removed, not as listed: processing may have finished in between.
            after = self._store.mark_removed(record.id, None)
            if after is None:
                return False  # attached (or removed) since it was listed
            record = after
        return self._purge(record)

    def _purge(self, record: MediaRecord) -> bool:
        """Objects, CDN, `purged_at`; False if the CDN failed (the record stays unpurged)."""
        if self._objects is None:
            raise RuntimeError("MediaService was built without the media bucket's objects")
        self._objects.delete([record.key, *(v.key for v in record.variants)])
        if self._cdn is not None and record.post_id is not None and record.variants:
            # A post published its URLs; edges may hold them for a year. (An unattached
            # medium's URLs were shown to its owner only.) The exact paths: CloudFront allows
            # thousands in progress, but only 15 wildcard ones.
            try:
                self._cdn.invalidate(
                    [f"/{v.key}" for v in record.variants], reference=f"media-{record.id}"
                )
            except CdnUnavailable:
                log.warning("media %s: CDN not invalidated; the cleanup job retries", record.id)
                return False
        self._store.mark_purged(record.id, self._clock())
        return True
