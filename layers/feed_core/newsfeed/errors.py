"""Domain exceptions. The HTTP layer maps each `code` to a status; the domain never knows HTTP."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller can act on; `code` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    code = "invalid_input"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class Unavailable(DomainError):
    """A store or the queue failed mid-way; the request is safe to retry (with the same
    idempotency key, for creates)."""

    code = "unavailable"


class StoreUnavailable(Unavailable):
    """A store did not answer (down, hung past its timeout, failing over). Adapters raise it from
    their driver's connection and timeout errors, so the domain decides what degrades without
    knowing any driver; `store` names the role (graph, posts, timelines, queue) for logs and
    metrics. Nothing was promised to the caller: the request may be retried."""

    code = "unavailable"
    store = "store"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or f"the {self.store} store is unavailable; retry shortly")


class GraphStoreUnavailable(StoreUnavailable):
    store = "graph"


class PostStoreUnavailable(StoreUnavailable):
    store = "posts"


class TimelineStoreUnavailable(StoreUnavailable):
    store = "timelines"


class QueueUnavailable(StoreUnavailable):
    store = "queue"


class EngagementStoreUnavailable(StoreUnavailable):
    store = "engagement"


class MediaStoreUnavailable(StoreUnavailable):
    store = "media"


class MediaBucketUnavailable(StoreUnavailable):
    store = "media bucket"


class CdnUnavailable(StoreUnavailable):
    store = "cdn"


class DuplicateId(DomainError):
    """A store already holds a record under this id (a snowflake collision, or a concurrent
    retry of the same idempotent create): the caller decides which."""

    code = "conflict"
