"""Page sizes: the one rule every listing endpoint shares."""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput

MIN_LIMIT, MAX_LIMIT = 1, 100


def check_limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not MIN_LIMIT <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer in {MIN_LIMIT}..{MAX_LIMIT}")
    return limit
