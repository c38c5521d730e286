"""Bodies of the media routes. Apart from feed_api.schemas: only the posts function serves
these, and building their models costs every importer about 9 ms of cold start."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from feed_api.schemas import PostMediaOut
from newsfeed.ids import MAX_ID
from newsfeed.media.service import MEDIA_STATES, MEDIA_TYPES


class CreateMedia(BaseModel):
    """What the client will upload; the upload target accepts exactly this."""

    model_config = ConfigDict(extra="forbid")
    content_type: Literal[MEDIA_TYPES] = Field(  # type: ignore[valid-type]
        description="The file's type; the upload must carry the same Content-Type.",
        examples=["image/jpeg"],
    )
    # The upper bound is a deployment setting (MEDIA_MAX_BYTES, 10 MiB by default): above it
    # the domain answers 400 with the limit.
    size_bytes: int = Field(
        ge=1,
        le=MAX_ID,
        description="The file's size in bytes, 1 to MEDIA_MAX_BYTES (10 MiB by default); the "
        "upload may not be larger.",
        examples=[482_113],
    )


class UploadTargetOut(BaseModel):
    url: str = Field(description="POST a multipart/form-data form here.")
    fields: dict[str, str] = Field(
        description="Form fields to send as they are, before the `file` field (last)."
    )
    expires_at: datetime = Field(description="The form is refused after this instant (UTC).")


class MediaOut(BaseModel):
    id: str = Field(description="Media id (64-bit snowflake).", examples=["7" * 19])
    state: Literal[MEDIA_STATES] = Field(  # type: ignore[valid-type]
        description="`pending` until the upload is processed (seconds after it), then `ready` "
        "(attach it with `media_ids` in POST /v1/posts) or `failed` (`error` says why); "
        "`removed` once its post was deleted, or a day after the upload if no post took it."
    )
    error: str | None = Field(default=None, description="Why the upload was refused.")
    content_type: str = Field(
        description="Declared until processed; then the type found in the file's bytes."
    )
    size_bytes: int = Field(description="The declared size.")
    created_at: datetime
    post_id: str | None = Field(default=None, description="The post it is attached to.")
    media: PostMediaOut | None = Field(
        default=None, description="Once ready: the medium as a post shows it."
    )

    @classmethod
    def from_domain(cls, media: Any, attached: Any = None) -> MediaOut:
        return cls(
            id=str(media.id),
            state=media.state,
            error=media.error,
            content_type=media.content_type,
            size_bytes=media.size_bytes,
            created_at=media.created_at,
            post_id=str(media.post_id) if media.post_id is not None else None,
            media=PostMediaOut.from_domain(attached) if attached is not None else None,
        )


class MediaUploadOut(BaseModel):
    id: str = Field(description="Media id (64-bit snowflake).", examples=["7" * 19])
    state: str = Field(description="`pending` until the upload is processed.")
    upload: UploadTargetOut

    @classmethod
    def from_domain(cls, media: Any, target: Any) -> MediaUploadOut:
        return cls(
            id=str(media.id),
            state=media.state,
            upload=UploadTargetOut(
                url=target.url, fields=dict(target.fields), expires_at=target.expires_at
            ),
        )
