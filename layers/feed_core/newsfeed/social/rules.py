"""What a profile may contain (the HTTP schema states the same rules from these constants)."""

from __future__ import annotations

import re

# Used with fullmatch: `$` with match() would accept a trailing newline (the database refuses it).
HANDLE_RE = re.compile(r"[A-Za-z0-9_]{3,30}")
# Single-line fields; PostgreSQL refuses NUL in text, the other controls are never meant.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_DISPLAY_NAME = 50
MAX_AUTH_SUBJECT = 255
