"""Processing an upload into the variants a post shows (the media function, on S3's event).

The upload is the client's bytes: its type is found from them, not from the declared
Content-Type or a name; anything that is not a JPEG, PNG, WebP or GIF, is larger than allowed in
bytes or pixels, or does not decode is refused, and the record says why. The variants are
re-encoded from the decoded pixels, so nothing of the file's metadata (EXIF: location, camera,
time) survives but the orientation, applied to the pixels, and the colour profile. Each
variant's key holds a random token: media ids are time-ordered, and a URL that could be
guessed from one would outlive a deleted post in any CDN cache that still holds it.

S3 delivers events at least once, possibly twice at the same time: only a pending record is
processed, and only the first result is kept (a second run's objects are deleted).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ..clock import Clock, utcnow
from ..model import MediaRecord, MediaVariant
from ..ports import MediaObjects, MediaStore
from ..telemetry import MEDIA_UPLOADS, NO_TELEMETRY, Telemetry
from .service import FAILED, PENDING, READY, UPLOAD_PREFIX
from .sniffing import SNIFF_BYTES, looks_like_video, sniff_image_type

log = logging.getLogger(__name__)

# Variants are never rewritten under the same key (a new upload is a new medium, a new token):
# a year in every cache, and no revalidation.
IMMUTABLE = "public, max-age=31536000, immutable"
VARIANTS_PREFIX = "media/"


@dataclass(frozen=True, slots=True)
class VariantSpec:
    name: str
    max_side: int  # the longer side is at most this; never enlarged
    # Animations keep every frame in memory while encoding: their display variant is smaller.
    max_side_animated: int


VARIANT_SPECS: tuple[VariantSpec, ...] = (
    VariantSpec("thumbnail", 320, 320),
    VariantSpec("display", 1600, 640),
)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_pixels: int  # per frame, checked from the header before anything is decoded
    max_frames: int
    max_animation_pixels: int  # frames x pixels, the decoding work of an animation


@dataclass(frozen=True, slots=True)
class RenderedVariant:
    name: str
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class RenderedImage:
    kind: str  # "image", or "gif" for any animation (GIF or WebP)
    width: int  # of the full image, oriented
    height: int
    placeholder: str  # "#rrggbb", the average colour: shown until a variant loads
    variants: tuple[RenderedVariant, ...]


class ImageRefused(Exception):
    """The bytes are not an image this service takes; the message is for the uploader."""


class ImageRenderer(Protocol):
    def render(
        self, data: bytes, content_type: str, specs: Sequence[VariantSpec], limits: ImageLimits
    ) -> RenderedImage:
        """Decode, orient and re-encode into one variant per spec. Raises ImageRefused."""
        ...


def parse_upload_key(key: str) -> tuple[int, int] | None:
    """(owner id, media id) of `uploads/<owner>/<id>`, None for any other key."""
    if not key.startswith(UPLOAD_PREFIX):
        return None
    parts = key[len(UPLOAD_PREFIX) :].split("/")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 20 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


class MediaProcessor:
    def __init__(
        self,
        store: MediaStore,
        objects: MediaObjects,
        renderer: ImageRenderer,
        *,
        max_bytes: int,
        limits: ImageLimits,
        specs: Sequence[VariantSpec] = VARIANT_SPECS,
        clock: Clock = utcnow,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._telemetry = telemetry
        self._store = store
        self._objects = objects
        self._renderer = renderer
        self.max_bytes = max_bytes
        self.limits = limits
        self._specs = tuple(specs)
        self._clock = clock

    def process_upload(self, key: str) -> str:
        """Process the object at `key`; returns what came of it: ready, failed, or ignored (not
        an upload key, an unknown medium, or one processed already). Store and bucket faults
        raise, so the event is delivered again."""
        try:
            outcome = self._process(key)
        except Exception:
            self._telemetry.count(MEDIA_UPLOADS, outcome="error")
            raise
        self._telemetry.count(MEDIA_UPLOADS, outcome=outcome)
        return outcome

    def _process(self, key: str) -> str:
        parsed = parse_upload_key(key)
        if parsed is None:
            log.warning("ignored an object outside uploads/: %s", key)
            return "ignored"
        owner_id, media_id = parsed
        record = self._store.get_media(media_id)
        if record is None or record.owner_id != owner_id or record.key != key:
            # Nothing signs such a key; the bytes are nobody's to keep.
            log.warning("deleted an upload no record owns: %s", key)
            self._objects.delete([key])
            return "ignored"
        if record.state != PENDING:
            # Uploaded again through a target still valid, or left by a delete that failed
            # after processing: the bytes (and their metadata) are not kept.
            self._objects.delete([key])
            return "ignored"
        size = self._objects.size(key)
        if size is None:
            return "ignored"  # deleted since the event (a removed medium, or a second run)
        try:
            rendered, content_type = self._render(key, size)
        except ImageRefused as refused:
            return self._fail(record, str(refused))
        return self._keep(record, rendered, content_type)

    def _render(self, key: str, size: int) -> tuple[RenderedImage, str]:
        if size > self.max_bytes:
            raise ImageRefused(f"the file is {size} bytes; at most {self.max_bytes} are taken")
        data = self._objects.read(key)
        head = data[:SNIFF_BYTES]
        content_type = sniff_image_type(head)
        if content_type is None:
            if looks_like_video(head):
                raise ImageRefused("video is not supported yet: upload a JPEG, PNG, WebP or GIF")
            raise ImageRefused("the file is not an image: upload a JPEG, PNG, WebP or GIF")
        return self._renderer.render(data, content_type, self._specs, self.limits), content_type

    def _fail(self, record: MediaRecord, reason: str) -> str:
        if self._store.finish_processing(
            replace(record, state=FAILED, error=reason, processed_at=self._clock())
        ):
            log.info("media %s refused: %s", record.id, reason)
        # The refused bytes are of no use, and may be anything.
        self._objects.delete([record.key])
        return "failed"

    def _keep(self, record: MediaRecord, image: RenderedImage, content_type: str) -> str:
        token = secrets.token_hex(8)
        variants = []
        for v in image.variants:
            key = f"{VARIANTS_PREFIX}{record.id}/{token}/{v.name}.{v.extension}"
            self._objects.write(key, v.data, v.content_type, IMMUTABLE)
            variants.append(MediaVariant(v.name, key, v.content_type, v.width, v.height))
        done = replace(
            record,
            state=READY,
            content_type=content_type,
            kind=image.kind,
            width=image.width,
            height=image.height,
            placeholder=image.placeholder,
            variants=tuple(variants),
            processed_at=self._clock(),
        )
        if not self._store.finish_processing(done):
            # A concurrent run of the same event finished first: its variants are the ones.
            self._objects.delete([v.key for v in variants])
            return "ignored"
        # The original still has the metadata the variants dropped.
        self._objects.delete([record.key])
        return "ready"
