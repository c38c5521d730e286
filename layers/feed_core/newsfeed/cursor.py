"""Opaque, HMAC-signed pagination cursors.

A cursor is `base64url(json).base64url(mac)`. The MAC covers a `kind` so a followers cursor cannot
be replayed as a feed cursor. Anything malformed or tampered with is `InvalidInput`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from .errors import InvalidInput

MAX_CURSOR_LENGTH = 512
_MAC_BYTES = 16  # 128-bit tag: plenty against forgery, keeps cursors short


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str | bytes) -> None:
        if not secret:
            raise ValueError("cursor secret must not be empty")
        self._key = secret.encode() if isinstance(secret, str) else secret

    def _mac(self, kind: str, body: str) -> bytes:
        message = f"{kind}.{body}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, kind: str, payload: dict[str, Any]) -> str:
        body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{_b64encode(self._mac(kind, body))}"

    def decode(self, kind: str, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > MAX_CURSOR_LENGTH:
            raise InvalidInput("invalid cursor")
        body, sep, tag = token.partition(".")
        if not sep:
            raise InvalidInput("invalid cursor")
        try:
            # Check the MAC before parsing anything the client could have made up.
            if not hmac.compare_digest(_b64decode(tag), self._mac(kind, body)):
                raise InvalidInput("invalid cursor")
            payload = json.loads(_b64decode(body))
        except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            raise InvalidInput("invalid cursor") from exc
        if not isinstance(payload, dict):
            raise InvalidInput("invalid cursor")
        return payload

    def decode_int(self, kind: str, token: str | None, field: str) -> int | None:
        """Decode a cursor holding one positive integer; `None` token means "from the start"."""
        if token is None:
            return None
        value = self.decode(kind, token).get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InvalidInput("invalid cursor")
        return value

    def encode_int(self, kind: str, field: str, value: int) -> str:
        return self.encode(kind, {field: value})
