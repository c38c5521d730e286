"""Request and response bodies of the v1 API.

Ids are strings in JSON: 64-bit snowflakes do not survive JavaScript numbers. Responses are built
from the domain dataclasses with `from_domain`, so the HTTP shape can evolve apart from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from newsfeed.model import MEDIA_KINDS
from newsfeed.posting.rules import MAX_MEDIA, MAX_TEXT_LENGTH
from newsfeed.social.rules import HANDLE_RE, MAX_DISPLAY_NAME

# The domain's own rules, stated in the schema too (taken from the domain's constants, so there
# is still one place to change them): a request the schema allows is one the domain accepts,
# which generated clients and schema-driven tests rely on. The domain still checks them all.
MAX_TEXT_CHARS = MAX_TEXT_LENGTH
HANDLE_PATTERN = f"^{HANDLE_RE.pattern}$"
# At least one visible character, and none that a single-line field (or PostgreSQL) refuses.
_NO_CONTROL = r"\x00-\x1f\x7f-\x9f"
DISPLAY_NAME_PATTERN = rf"^[^{_NO_CONTROL}]*[^{_NO_CONTROL}\s][^{_NO_CONTROL}]*$"
# Text may span lines; only NUL is refused (PostgreSQL and BSON tooling choke on it).
TEXT_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"


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


class VariantOut(BaseModel):
    name: Literal["thumbnail", "display"] = Field(
        description="`thumbnail`: at most 320 px a side; `display`: at most 1600 (640 for an "
        "animation)."
    )
    url: str = Field(
        description="On the CDN; immutable (`Cache-Control: public, max-age=31536000, immutable`)."
    )
    content_type: str = Field(examples=["image/webp"])
    width: int
    height: int


class PostMediaOut(BaseModel):
    """A medium of a post. Posts made before uploads were processed carry only `url` and
    `kind` (the other fields are null and `variants` empty)."""

    url: str = Field(
        description="The display variant's URL (for older posts, the URL they were made with).",
        examples=[
            "https://d111111abcdef8.cloudfront.net/media/7777777777777777777/"
            "9f86d081884c7d65/display.webp"
        ],
    )
    kind: Literal[MEDIA_KINDS] = Field(  # type: ignore[valid-type]
        description="`image`, or `gif` for an animation (GIF or WebP)."
    )
    id: str | None = Field(default=None, description="The medium's id (POST /v1/media).")
    width: int | None = Field(default=None, description="Pixels of the full image, oriented.")
    height: int | None = None
    placeholder: str | None = Field(
        default=None,
        description="`#rrggbb`, the image's average colour: paint it until a variant loads.",
        examples=["#7a8b6c"],
    )
    variants: list[VariantOut] = Field(default_factory=list)

    @classmethod
    def from_domain(cls, m: Any) -> PostMediaOut:
        return cls(
            url=m.url,
            kind=m.kind,
            id=str(m.id) if m.id is not None else None,
            width=m.width,
            height=m.height,
            placeholder=m.placeholder,
            variants=[
                VariantOut(
                    name=v.name,
                    url=v.url,
                    content_type=v.content_type,
                    width=v.width,
                    height=v.height,
                )
                for v in m.variants
            ],
        )


class CreatePost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        min_length=1, max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN, examples=["hello, timeline"]
    )
    media_ids: list[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,18}$")]] = Field(
        default_factory=list,
        max_length=MAX_MEDIA,
        description="Up to 4 of your media (POST /v1/media), processed (`state` ready) and on "
        "no other post, in the order shown: 404 for an id that is not one of yours, 409 for a "
        "medium not ready or on another post.",
        examples=[["7" * 19]],
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("media_ids")
    @classmethod
    def _no_repeats(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("media_ids must not repeat a medium")
        return ids


class PostOut(BaseModel):
    id: str = Field(description="Post id (64-bit snowflake, time-ordered).", examples=["7" * 19])
    author_id: str
    text: str
    media: list[PostMediaOut]
    created_at: datetime
    like_count: int = 0

    @classmethod
    def from_domain(cls, post: Any) -> PostOut:
        return cls(
            id=str(post.id),
            author_id=str(post.author_id),
            text=post.text,
            media=[PostMediaOut.from_domain(m) for m in (post.media or [])],
            created_at=post.created_at,
            like_count=getattr(post, "like_count", 0) or 0,
        )


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
