"""What a post may contain, checked before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInput
from ..model import MEDIA_KINDS, Media

MAX_TEXT_LENGTH = 2000
MAX_MEDIA = 4
MAX_URL_LENGTH = 2048
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# A key claims its post this long; a request with the key after that creates a new post (the
# claim is replaced), and the cleanup job deletes claims this old.
IDEMPOTENCY_KEY_HOURS = 24
# The post store (FerretDB over PostgreSQL) refuses NUL in text; a URL has no control characters.
_NUL = "\x00"
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput(f"text is longer than {MAX_TEXT_LENGTH} characters")
    if _NUL in text:
        raise InvalidInput("text must not contain NUL characters")
    return text


def check_media(media: Sequence[Any] | None) -> tuple[Media, ...]:
    if media is None:
        return ()
    if not isinstance(media, (list, tuple)):
        raise InvalidInput("media must be a list")
    if len(media) > MAX_MEDIA:
        raise InvalidInput(f"at most {MAX_MEDIA} media items")
    out = []
    for item in media:
        url, kind = (
            (item.url, item.kind)
            if isinstance(item, Media)
            else ((item.get("url"), item.get("kind")) if isinstance(item, dict) else (None, None))
        )
        if (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or len(url) > MAX_URL_LENGTH
        ):
            raise InvalidInput("each media item needs an http(s) url of at most 2048 characters")
        if _URL_CONTROL.search(url):
            raise InvalidInput("a media url must not contain control characters")
        if kind not in MEDIA_KINDS:
            raise InvalidInput(f"media kind must be one of {', '.join(MEDIA_KINDS)}")
        out.append(Media(url, kind))
    return tuple(out)


def check_idempotency_key(key: str | None) -> str | None:
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput("Idempotency-Key must be 1-100 characters of [A-Za-z0-9_.:-]")
    return key
