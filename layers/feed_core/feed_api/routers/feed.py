"""The caller's home timeline (the `feed` function)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from feed_api.deps import CurrentUserId, Cursor, Limit, ServicesDep, run_blocking
from feed_api.errors import error_responses
from feed_api.schemas import FeedPageOut, PostOut

router = APIRouter(prefix="/v1", tags=["feed"], responses=error_responses(401, 422, 503))


@router.get(
    "/feed",
    response_model=FeedPageOut,
    summary="The caller's home feed, newest first",
    description="Posts of the accounts you follow and your own, without muted or blocked "
    "authors. Page down with `cursor`; new posts never shift a page you already have.",
    responses=error_responses(400, 404),
)
async def home_feed(
    request: Request,
    me: CurrentUserId,
    services: ServicesDep,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> FeedPageOut:
    page = await run_blocking(request, services.feed.home_feed, me, cursor, limit)
    return FeedPageOut(
        items=[PostOut.from_domain(p) for p in page.items],
        next_cursor=page.next_cursor,
        partial=bool(getattr(page, "partial", False)),
    )
