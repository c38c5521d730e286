"""Media uploads (served by the `posts` function): an upload target for the caller's file,
and the state of the caller's media."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from feed_api.deps import CurrentUser, MediaId, ServicesDep
from feed_api.errors import error_responses
from feed_api.media_schemas import CreateMedia, MediaOut, MediaUploadOut
from newsfeed.media.service import READY

router = APIRouter(prefix="/v1", tags=["media"], responses=error_responses(401, 422, 503))


@router.post(
    "/media",
    status_code=status.HTTP_201_CREATED,
    response_model=MediaUploadOut,
    summary="Start a media upload",
    description="Creates a pending medium and returns its upload target: an S3 presigned POST "
    "form for this medium's key only, accepting at most `size_bytes` bytes of `content_type`, "
    "until `expires_at` (minutes). Send `upload.fields` and then the file as `file` in a "
    "multipart/form-data POST to `upload.url` (S3 answers 204). Seconds later the upload is "
    "processed (GET /v1/media/{media_id}): `ready`, with its variants, or `failed`, with the "
    "reason. The type is taken from the file's bytes, not from `content_type`: JPEG, PNG, "
    "WebP and GIF only; video is not taken yet (refused here, and as `failed` if uploaded "
    "under an image type).",
    responses=error_responses(400, 404),
)
def create_media(
    body: CreateMedia, me: CurrentUser, services: ServicesDep, response: Response
) -> MediaUploadOut:
    media, target = services.media.create_upload(me.id, body.content_type, body.size_bytes)
    response.headers["Location"] = f"/v1/media/{media.id}"
    return MediaUploadOut.from_domain(media, target)


@router.get(
    "/media/{media_id}",
    response_model=MediaOut,
    summary="Your medium's state",
    description="404 for an unknown id and for another user's medium alike.",
    responses=error_responses(404),
)
def get_media(media_id: MediaId, me: CurrentUser, services: ServicesDep) -> MediaOut:
    record = services.media.get(me.id, media_id)
    attached = services.media.as_attached(record) if record.state == READY else None
    return MediaOut.from_domain(record, attached)
