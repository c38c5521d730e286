"""Snowflake ids: 41 bits of milliseconds since 2025-01-01T00:00:00Z, 10 bits worker, 12 bits
sequence. Time-ordered, so a post id is also its sort key and its feed cursor.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .errors import InvalidInput

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
TIME_SHIFT = WORKER_BITS + SEQUENCE_BITS
MAX_ID = (1 << 63) - 1
# Width of the zero-padded decimal form used where ids must sort as strings (Redis members).
ID_WIDTH = 19


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class IdGenerator:
    """Thread-safe generator; one per process. Uniqueness across processes rests on the worker id
    (random unless given) plus MongoDB's unique `_id`, which makes a rare collision a retry."""

    def __init__(
        self, worker_id: int | None = None, clock_ms: Callable[[], int] = _wall_ms
    ) -> None:
        if worker_id is None:
            worker_id = random.SystemRandom().randint(0, MAX_WORKER)
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker id must be in 0..{MAX_WORKER}, got {worker_id}")
        self.worker_id = worker_id
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            now = self._clock_ms() - EPOCH_MS
            if now < 0:
                raise ValueError("clock is before the id epoch")
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            else:
                # Same millisecond, or the clock stepped back: never reuse or go backwards. When
                # the sequence runs out, borrow the next millisecond instead of sleeping.
                self._sequence += 1
                if self._sequence > MAX_SEQUENCE:
                    self._last_ms, self._sequence = self._last_ms + 1, 0
            return (
                (self._last_ms << TIME_SHIFT) | (self.worker_id << SEQUENCE_BITS) | self._sequence
            )


def id_to_ms(snowflake: int) -> int:
    """Unix milliseconds at which an id was made."""
    return (snowflake >> TIME_SHIFT) + EPOCH_MS


def id_to_datetime(snowflake: int) -> datetime:
    return datetime.fromtimestamp(id_to_ms(snowflake) / 1000, tz=UTC)


def lowest_id_at(unix_ms: int) -> int:
    """Smallest id that can be made at `unix_ms`: a cursor for "older than this instant"."""
    return max(0, unix_ms - EPOCH_MS) << TIME_SHIFT


def to_member(snowflake: int) -> str:
    """Fixed-width decimal: string order equals numeric order (ids stay below 19 digits until
    about 2032, so plain str() would not be fixed-width)."""
    return f"{snowflake:0{ID_WIDTH}d}"


def parse_id(raw: str | int, what: str = "id") -> int:
    """Parse an id from the outside world (JSON strings), refusing anything that is not one."""
    if isinstance(raw, bool):
        raise InvalidInput(f"{what} must be a decimal string")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= ID_WIDTH:
        value = int(raw)
    else:
        raise InvalidInput(f"{what} must be a decimal string of at most {ID_WIDTH} digits")
    if not 0 < value <= MAX_ID:
        raise InvalidInput(f"{what} is out of range")
    return value
