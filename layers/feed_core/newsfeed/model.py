"""Plain data the services take and return. JSON shapes (ids as strings) live in `to_dict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, NamedTuple, TypeVar

FanoutMode = Literal["push", "pull", "push_pending"]
FANOUT_MODES: tuple[str, ...] = ("push", "pull", "push_pending")
# "video" only on posts made before uploads were processed (issue 13), which took any URL.
MEDIA_KINDS: tuple[str, ...] = ("image", "video", "gif")
# States of a timeline or author list: usable only when ready (a missing or building one is
# rebuilt by its reader).
LIST_READY = "ready"
LIST_BUILDING = "building"

T = TypeVar("T")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class User:
    id: int
    auth_subject: str
    handle: str
    display_name: str
    follower_count: int
    following_count: int
    fanout_mode: str
    created_at: datetime
    last_active_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Public profile (no auth subject, no internal fan-out state)."""
        return {
            "id": str(self.id),
            "handle": self.handle,
            "display_name": self.display_name,
            "follower_count": self.follower_count,
            "following_count": self.following_count,
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class MediaVariant:
    """One rendition of a processed medium: its object `key` in the media bucket, and, in a
    post, the `url` it is served from (the CDN base + key)."""

    name: str  # "thumbnail" | "display"
    key: str
    content_type: str
    width: int
    height: int
    url: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaVariant:
        return cls(
            name=data["name"],
            key=data["key"],
            content_type=data["content_type"],
            width=int(data["width"]),
            height=int(data["height"]),
            url=data.get("url") or "",
        )


@dataclass(frozen=True, slots=True)
class Media:
    """A medium as a post carries it. Posts made before uploads (issue 13) carry only `url` and
    `kind`; an attached upload also has its id, the display size, a placeholder colour and
    its variants, `url` being the display variant's."""

    url: str
    kind: str
    id: int | None = None
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    variants: tuple[MediaVariant, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kind": self.kind,
            "id": str(self.id) if self.id is not None else None,
            "width": self.width,
            "height": self.height,
            "placeholder": self.placeholder,
            "variants": [v.to_dict() for v in self.variants],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Media:
        raw_id = data.get("id")
        return cls(
            url=data["url"],
            kind=data["kind"],
            id=int(raw_id) if raw_id is not None else None,
            width=data.get("width"),
            height=data.get("height"),
            placeholder=data.get("placeholder"),
            variants=tuple(MediaVariant.from_dict(v) for v in data.get("variants") or ()),
        )


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """An uploaded (or awaited) medium. Its upload is the object `key`; `state` goes
    pending -> ready (variants written) or failed (`error` says why), and removed once its
    objects are deleted. `post_id` is the one post it is attached to."""

    id: int
    owner_id: int
    content_type: str
    size_bytes: int
    state: str
    key: str
    created_at: datetime
    kind: str | None = None
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    variants: tuple[MediaVariant, ...] = ()
    error: str | None = None
    processed_at: datetime | None = None
    post_id: int | None = None
    attached_at: datetime | None = None
    # False from the claim until its post is known stored: only such a claim is ever let go.
    claim_confirmed: bool = False
    purged_at: datetime | None = None  # when its objects were deleted


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where and how the client uploads: an HTML form POST to `url` with `fields` plus the
    file, accepted until `expires_at`."""

    url: str
    fields: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    author_id: int
    text: str
    media: tuple[Media, ...]
    created_at: datetime
    like_count: int = 0
    deleted_at: datetime | None = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "author_id": str(self.author_id),
            "text": self.text,
            "media": [m.to_dict() for m in self.media],
            "created_at": _iso(self.created_at),
            "like_count": self.like_count,
            "deleted_at": _iso(self.deleted_at),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Post:
        """Inverse of `to_dict` (the post cache stores exactly that shape)."""
        deleted = data.get("deleted_at")
        return cls(
            id=int(data["id"]),
            author_id=int(data["author_id"]),
            text=data["text"],
            media=tuple(Media.from_dict(m) for m in data.get("media") or ()),
            created_at=datetime.fromisoformat(data["created_at"]),
            like_count=int(data.get("like_count", 0)),
            deleted_at=datetime.fromisoformat(deleted) if deleted else None,
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: list[Post]
    next_cursor: str | None
    # True when a store failed and the page may miss items (it is still correct in what it shows).
    partial: bool = False


class FeedSources(NamedTuple):
    """What one feed read asks the timeline store for, derived from a reader's graph."""

    visible: frozenset[int]  # followees and the reader, minus muted and blocked
    pulled: tuple[int, ...]  # visible authors read at request time (pull, push_pending, self)
    pushed: tuple[int, ...]  # visible authors whose posts are in the home timeline (push)


@dataclass(frozen=True, slots=True)
class ReaderGraph:
    """Everything the feed read needs from PostgreSQL, loaded in one round trip. Treat as
    immutable: the graph store may hand the same object to many reads."""

    reader_id: int
    followees: dict[int, str]  # followee id -> fanout_mode
    muted: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()  # either direction
    # Inactive beyond ACTIVE_DAYS: fan-out skipped this reader, so the timeline must be rebuilt.
    inactive: bool = False
    # last_active_at is older than a minute: worth an UPDATE.
    touch_due: bool = False
    # Derived views, computed on first use (a graph kept between reads computes them once).
    _memo: dict[str, Any] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    def visible_authors(self) -> frozenset[int]:
        return self.feed_sources().visible

    def feed_sources(self) -> FeedSources:
        sources = self._memo.get("sources")
        if sources is None:
            visible = frozenset(({*self.followees, self.reader_id} - self.muted) - self.blocked)
            sources = FeedSources(
                visible,
                tuple(a for a in self.pulled_authors() if a in visible),
                tuple(a for a, m in self.followees.items() if m == "push" and a in visible),
            )
            self._memo["sources"] = sources
        return sources

    def pulled_authors(self) -> list[int]:
        """Authors read at request time: pull-mode followees, push_pending ones (still pulled while
        their backfill runs) and the reader's own posts."""
        pulled = [a for a, mode in self.followees.items() if mode != "push"]
        pulled.append(self.reader_id)
        return pulled

    def pushed_authors(self) -> list[int]:
        """Followees whose posts are (or are being) pushed into the reader's timeline."""
        return [a for a, mode in self.followees.items() if mode != "pull"]


@dataclass(frozen=True, slots=True)
class FollowChange:
    """Outcome of adding or removing one follow edge."""

    follower_id: int
    followee_id: int
    changed: bool  # False when the edge was already in the requested state
    followee_mode: str  # mode after the change
    # "to_pull" or "to_push_pending" when the followee crossed the celebrity threshold.
    crossing: str | None = None
    # With "to_push_pending": the id of the backfill job that alone may finish this crossing.
    backfill_job: str | None = None


@dataclass(frozen=True, slots=True)
class ListRead:
    """One home timeline or author list as read from the timeline store: its state, horizon and
    the ids below the cursor, newest first."""

    state: str  # LIST_READY, LIST_BUILDING, or '' when missing
    horizon: int  # 0: complete to the bottom; else holds every relevant post with id >= horizon
    ids: list[int]

    @property
    def ready(self) -> bool:
        return self.state == LIST_READY


@dataclass(frozen=True, slots=True)
class BlockChange:
    changed: bool
    removed_follows: list[FollowChange] = field(default_factory=list)
