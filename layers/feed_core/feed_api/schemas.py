"""Request and response bodies of the v1 API.

Ids are strings in JSON: 64-bit snowflakes do not survive JavaScript numbers. Responses are built
from the domain dataclasses with `from_domain`, so the HTTP shape can evolve apart from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from newsfeed.model import MEDIA_KINDS
from newsfeed.posting.rules import MAX_MEDIA, MAX_TEXT_LENGTH, MAX_URL_LENGTH
from newsfeed.social.rules import HANDLE_RE, MAX_DISPLAY_NAME

# The domain's own rules, stated in the schema too (taken from the domain's constants, so there
# is still one place to change them): a request the schema allows is one the domain accepts,
# which generated clients and schema-driven tests rely on. The domain still checks them all.
MAX_TEXT_CHARS = MAX_TEXT_LENGTH
MAX_URL_CHARS = MAX_URL_LENGTH
HANDLE_PATTERN = f"^{HANDLE_RE.pattern}$"
# At least one visible character, and none that a single-line field (or PostgreSQL) refuses.
_NO_CONTROL = r"\x00-\x1f\x7f-\x9f"
DISPLAY_NAME_PATTERN = rf"^[^{_NO_CONTROL}]*[^{_NO_CONTROL}\s][^{_NO_CONTROL}]*$"
# Text may span lines; only NUL is refused (PostgreSQL and BSON tooling choke on it).
TEXT_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"
URL_PATTERN = rf"^https?://[^{_NO_CONTROL}]+$"


class CreateUser(BaseModel):
    """The caller's new profile; the account is the token's subject."""

    model_config = ConfigDict(extra="forbid")
    handle: str = Field(
        pattern=HANDLE_PATTERN,
        examples=["ada_l"],
        description="Unique, case-insensitive: 3 to 30 letters, digits and underscores.",
    )
    display_name: str = Field(
        min_length=1,
        max_length=MAX_DISPLAY_NAME,
        pattern=DISPLAY_NAME_PATTERN,
        examples=["Ada Lovelace"],
    )


class UserOut(BaseModel):
    id: str = Field(description="User id (64-bit, as a decimal string).", examples=["7" * 19])
    handle: str
    display_name: str
    follower_count: int
    following_count: int
    created_at: datetime | None = None

    @classmethod
    def from_domain(cls, user: Any) -> UserOut:
        return cls(
            id=str(user.id),
            handle=user.handle,
            display_name=user.display_name or "",
            follower_count=user.follower_count,
            following_count=user.following_count,
            created_at=getattr(user, "created_at", None),
        )


class Media(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=MAX_URL_CHARS, pattern=URL_PATTERN, examples=["https://cdn.example/a.jpg"]
    )
    # Literal over the domain's tuple: one list of kinds, shown as an enum in OpenAPI.
    kind: Literal[MEDIA_KINDS] = "image"  # type: ignore[valid-type]


class CreatePost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        min_length=1, max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN, examples=["hello, timeline"]
    )
    media: list[Media] = Field(default_factory=list, max_length=MAX_MEDIA)


class PostOut(BaseModel):
    id: str = Field(description="Post id (64-bit snowflake, time-ordered).", examples=["7" * 19])
    author_id: str
    text: str
    media: list[Media]
    created_at: datetime
    like_count: int = 0

    @classmethod
    def from_domain(cls, post: Any) -> PostOut:
        return cls(
            id=str(post.id),
            author_id=str(post.author_id),
            text=post.text,
            media=[_media_out(m) for m in (post.media or [])],
            created_at=post.created_at,
            like_count=getattr(post, "like_count", 0) or 0,
        )


def _media_out(m: Any) -> Media:
    if isinstance(m, dict):
        return Media(url=m["url"], kind=m.get("kind", "image"))
    return Media(url=m.url, kind=m.kind)


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null at the end."
    )

    @classmethod
    def from_domain(cls, page: Any) -> UserPage:
        return cls(items=[UserOut.from_domain(u) for u in page.items], next_cursor=page.next_cursor)


class PostPage(BaseModel):
    items: list[PostOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null at the end."
    )

    @classmethod
    def from_domain(cls, page: Any) -> PostPage:
        return cls(items=[PostOut.from_domain(p) for p in page.items], next_cursor=page.next_cursor)


class FeedPageOut(BaseModel):
    """A page of the caller's home timeline, newest first."""

    items: list[PostOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get older posts; null at the end."
    )
    partial: bool = Field(
        default=False,
        description="True when a source failed while rebuilding the timeline: retry later for "
        "a complete page.",
    )


class StatsCounts(BaseModel):
    impressions: int
    likes: int
    unlikes: int
    follows: int = Field(description="Follows received (authors only).")
    unfollows: int = Field(description="Unfollows received (authors only).")
    posts: int = Field(description="Posts published (authors only).")
    engagement_rate: float = Field(description="likes / impressions (0 without impressions).")


class StatsBucket(StatsCounts):
    start: datetime = Field(description="Start of the hour or day (UTC).")


class StatsOut(BaseModel):
    """Engagement rolled up by the analytics job (hourly; late events within the next run)."""

    id: str = Field(description="The post's or the author's id.")
    grain: Literal["hour", "day"]
    since: datetime = Field(description="Start of the first bucket of the window (UTC).")
    totals: StatsCounts = Field(description="Sums over the window.")
    buckets: list[StatsBucket] = Field(description="Buckets with any engagement, oldest first.")

    @classmethod
    def from_domain(cls, stats: Any) -> StatsOut:
        return cls(
            id=str(stats.entity_id),
            grain=stats.grain,
            since=stats.since,
            totals=StatsCounts(**stats.totals),
            buckets=[StatsBucket(**row.to_dict()) for row in stats.buckets],
        )
