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
