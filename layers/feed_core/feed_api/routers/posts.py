"""Posts and likes (the `posts` function)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from feed_api.caching import revalidated
from feed_api.deps import (
    CallerDep,
    CurrentUser,
    Cursor,
    Grain,
    Limit,
    PostId,
    ServicesDep,
    StatsDays,
    UserId,
    Viewer,
)
from feed_api.errors import error_responses
from feed_api.schemas import CreatePost, PostOut, PostPage, StatsOut
from newsfeed.posting.rules import IDEMPOTENCY_KEY

router = APIRouter(prefix="/v1", tags=["posts"], responses=error_responses(401, 422, 503))

NO_CONTENT = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


@router.post(
    "/posts",
    status_code=status.HTTP_201_CREATED,
    response_model=PostOut,
    summary="Publish a post",
    description="Stored, then delivered to followers' home timelines asynchronously. "
    "`media_ids` attaches up to 4 of your media (POST /v1/media), once processed: 404 for an "
    "id that is not one of yours, 409 for a medium not ready, refused, removed or on another "
    "post; nothing is attached then.",
    responses=error_responses(400, 404, 409, 503),
)
def create_post(
    body: CreatePost,
    me: CurrentUser,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Makes retries safe: the same key returns the post the first request "
            "created instead of creating another, for 24 hours (after that the key creates a new "
            "post). 1-100 characters of [A-Za-z0-9_.:-].",
            pattern=f"^{IDEMPOTENCY_KEY.pattern}$",
        ),
    ] = None,
) -> PostOut:
    post = services.posts.create(me.id, body.text, body.media_ids, idempotency_key=idempotency_key)
    response.headers["Location"] = f"/v1/posts/{post.id}"
    return PostOut.from_domain(post)


@router.get(
    "/posts/{post_id}",
    response_model=PostOut,
    summary="A post",
    description="404 also when the caller and the author are in a block (either way).",
    responses={
        **error_responses(404),
        304: {"description": "Not modified: `If-None-Match` names the post's current ETag."},
    },
)
def get_post(post_id: PostId, viewer: Viewer, services: ServicesDep, request: Request) -> Any:
    # ETag and conditional GET (caching.py): a client revalidates instead of reloading.
    return revalidated(request, PostOut.from_domain(services.posts.get(post_id, viewer_id=viewer)))


@router.delete(
    "/posts/{post_id}",
    **NO_CONTENT,
    summary="Delete your post",
    description="Only the author may delete; the post leaves followers' timelines.",
    responses=error_responses(403, 404),
)
def delete_post(post_id: PostId, me: CurrentUser, services: ServicesDep) -> None:
    services.posts.delete(me.id, post_id)


@router.put(
    "/posts/{post_id}/like",
    **NO_CONTENT,
    summary="Like a post",
    description="Idempotent.",
    responses=error_responses(404),
)
def like(post_id: PostId, me: CurrentUser, services: ServicesDep) -> None:
    services.likes.like(me.id, post_id)


@router.delete(
    "/posts/{post_id}/like",
    **NO_CONTENT,
    summary="Remove your like",
    description="Idempotent.",
    responses=error_responses(404),
)
def unlike(post_id: PostId, me: CurrentUser, services: ServicesDep) -> None:
    services.likes.unlike(me.id, post_id)


@router.get(
    "/users/{user_id}/posts",
    response_model=PostPage,
    summary="A user's posts, newest first",
    description="An empty page when the caller and the user are in a block (either way).",
    responses=error_responses(400, 404),
)
def author_posts(
    user_id: UserId, viewer: Viewer, services: ServicesDep, cursor: Cursor = None, limit: Limit = 20
) -> PostPage:
    page = services.posts.author_posts(user_id, cursor, limit, viewer_id=viewer)
    return PostPage.from_domain(page)


@router.get(
    "/posts/{post_id}/stats",
    response_model=StatsOut,
    summary="A post's engagement stats",
    description="Impressions, likes and engagement rate per hour or day, from the hourly "
    "analytics roll-up (an event shows after the next run).",
    responses=error_responses(404),
)
def post_stats(
    post_id: PostId, _: CallerDep, services: ServicesDep, grain: Grain = "day", days: StatsDays = 7
) -> StatsOut:
    return StatsOut.from_domain(services.stats.post_stats(post_id, grain, days))
