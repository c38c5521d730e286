"""Profiles: one per account (the token's subject), and the follower / following listings."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..cursor import CursorCodec
from ..errors import DuplicateId, InvalidInput, NotFound, TimelineStoreUnavailable
from ..ids import IdGenerator
from ..model import Page, User
from ..paging import check_limit
from ..ports import GraphStore, TimelineStore
from .rules import CONTROL_CHARS, HANDLE_RE, MAX_AUTH_SUBJECT, MAX_DISPLAY_NAME

log = logging.getLogger(__name__)

# Worker ids are random per process, so two processes can make the same id; a new id (the
# sequence moves on) is all it takes.
ID_COLLISION_RETRIES = 3
# Account subject -> user id, per process: a profile's id never changes and profiles are never
# deleted, so a hit is always right; a miss (no profile yet) is never cached. Bounded, so a
# flood of distinct tokens cannot grow it past about a megabyte.
SUBJECT_CACHE_SIZE = 10_000


class ProfileService:
    def __init__(
        self,
        graph: GraphStore,
        timelines: TimelineStore,
        cursors: CursorCodec,
        ids: IdGenerator,
    ) -> None:
        self._graph = graph
        self._timelines = timelines
        self._cursors = cursors
        self._ids = ids
        self._id_by_subject: dict[str, int] = {}

    def create_profile(self, auth_subject: str, handle: str, display_name: str) -> User:
        if (
            not isinstance(auth_subject, str)
            or not auth_subject
            or len(auth_subject) > MAX_AUTH_SUBJECT
        ):
            raise InvalidInput("auth subject is required")
        if CONTROL_CHARS.search(auth_subject):
            raise InvalidInput("auth subject must not contain control characters")
        if not isinstance(handle, str) or not HANDLE_RE.fullmatch(handle):
            raise InvalidInput("handle must be 3 to 30 letters, digits or underscores")
        if not isinstance(display_name, str) or not display_name.strip():
            raise InvalidInput("display name must not be empty")
        display_name = display_name.strip()
        if len(display_name) > MAX_DISPLAY_NAME:
            raise InvalidInput(f"display name is longer than {MAX_DISPLAY_NAME} characters")
        if CONTROL_CHARS.search(display_name):
            raise InvalidInput("display name must not contain control characters")
        user = self._insert_user(auth_subject, handle, display_name)
        # A new user follows nobody: an empty timeline is already complete. Purely a saving (the
        # first feed read would build the same), so a failure here is not an error.
        try:
            self._timelines.commit_timeline(user.id, [], 0)
        except TimelineStoreUnavailable:
            log.warning("empty timeline of new user %s not stored", user.id, exc_info=True)
        return user

    def _insert_user(self, auth_subject: str, handle: str, display_name: str) -> User:
        for attempt in range(ID_COLLISION_RETRIES):
            try:
                return self._graph.create_user(
                    self._ids.next_id(), auth_subject, handle, display_name
                )
            except DuplicateId:
                if attempt == ID_COLLISION_RETRIES - 1:
                    raise
                log.warning("user id collision; retrying with a new id")
        raise AssertionError("unreachable")

    def get_by_subject(self, auth_subject: str) -> User:
        user = self._graph.get_user_by_subject(auth_subject)
        if user is None:
            raise NotFound("no profile for this account")
        return user

    def user_id_of(self, auth_subject: str) -> int:
        """The id of the account's profile (NotFound without one): the read path's only need
        of the caller, answered from memory after the account's first request."""
        user_id = self._id_by_subject.get(auth_subject)
        if user_id is None:
            user_id = self.get_by_subject(auth_subject).id
            if len(self._id_by_subject) >= SUBJECT_CACHE_SIZE:
                self._id_by_subject.clear()
            self._id_by_subject[auth_subject] = user_id
        return user_id

    def get(self, user_id: int) -> User:
        user = self._graph.get_user(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    def followers(
        self, user_id: int, cursor: str | None, limit: int, viewer_id: int | None = None
    ) -> Page[User]:
        """Without the users in a block, either way, with `viewer_id` (None: no one)."""
        return self._users_page(
            self._graph.followers_page, "followers", user_id, cursor, limit, viewer_id
        )

    def following(
        self, user_id: int, cursor: str | None, limit: int, viewer_id: int | None = None
    ) -> Page[User]:
        """Without the users in a block, either way, with `viewer_id` (None: no one)."""
        return self._users_page(
            self._graph.following_page, "following", user_id, cursor, limit, viewer_id
        )

    def _users_page(
        self,
        fetch: Callable[[int, int | None, int, int | None], list[User]],
        kind: str,
        user_id: int,
        cursor: str | None,
        limit: int,
        viewer_id: int | None,
    ) -> Page[User]:
        limit = check_limit(limit)
        after = self._cursors.decode_int(kind, cursor, "a")
        # The store filters the hidden users in its page query: `more` and the cursor are
        # computed on what the viewer gets.
        users = fetch(user_id, after, limit + 1, viewer_id)
        more = len(users) > limit
        users = users[:limit]
        next_cursor = self._cursors.encode_int(kind, "a", users[-1].id) if more else None
        return Page(users, next_cursor)
