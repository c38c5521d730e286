"""Read-your-writes pins every process sees, for the PostgreSQL replica router
(postgres/replica.py): a user whose graph write just committed is read from the primary until
the replica must hold it. In-process pins cover the process that wrote; on Lambda the social
and the feed functions are different processes, so the router also pins here, in Redis, and
checks here before it sends a read to the replica (one Redis round trip, only then).

Key `pin:{user}` (the user's hash tag: the slot of the user's timeline), expiring with the pin.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .keys import write_pin_key

if TYPE_CHECKING:
    import redis


class RedisWritePins:
    def __init__(self, client: redis.Redis | redis.RedisCluster) -> None:
        self._r = client

    def pin(self, user_ids: Iterable[int], seconds: float) -> None:
        pipe = self._r.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.set(write_pin_key(user_id), 1, px=max(1, int(seconds * 1000)))
        pipe.execute()

    def pinned(self, user_ids: Iterable[int]) -> bool:
        keys = [write_pin_key(u) for u in user_ids]
        if not keys:
            return False
        pipe = self._r.pipeline(transaction=False)  # EXISTS of many keys spans slots
        for key in keys:
            pipe.exists(key)
        return any(pipe.execute())
