"""What a post may contain, checked before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInput, NotFound
from ..ids import MAX_ID, parse_id

MAX_TEXT_LENGTH = 2000
MAX_MEDIA = 4
MAX_URL_LENGTH = 2048  # of a media URL in posts made before uploads
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# A key claims its post this long; a request with the key after that creates a new post (the
# claim is replaced), and the cleanup job deletes claims this old.
IDEMPOTENCY_KEY_HOURS = 24
# The post store (FerretDB over PostgreSQL) refuses NUL in text.
_NUL = "\x00"


def check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput(f"text is longer than {MAX_TEXT_LENGTH} characters")
    if _NUL in text:
        raise InvalidInput("text must not contain NUL characters")
    return text


def check_media_ids(media_ids: Sequence[Any] | None) -> tuple[int, ...]:
    """The ids of the media to attach, in order: at most MAX_MEDIA, none repeated (whose
    they are and whether they are processed is the media service's to check)."""
    if media_ids is None:
        return ()
    if not isinstance(media_ids, (list, tuple)):
        raise InvalidInput("media_ids must be a list")
    if len(media_ids) > MAX_MEDIA:
        raise InvalidInput(f"at most {MAX_MEDIA} media per post")
    ids = tuple(_media_id(m) for m in media_ids)
    if len(set(ids)) != len(ids):
        raise InvalidInput("media_ids must not repeat a medium")
    return ids


def _media_id(raw: Any) -> int:
    # A well-formed id above the 63-bit range names no medium: not found, as any other would be
    # (the API's schema takes up to 19 digits).
    well_formed = isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 19
    if well_formed and int(raw) > MAX_ID:
        raise NotFound(f"media {raw} not found")
    return parse_id(raw, "media id")


def check_idempotency_key(key: str | None) -> str | None:
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput("Idempotency-Key must be 1-100 characters of [A-Za-z0-9_.:-]")
    return key
