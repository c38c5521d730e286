"""Profiles and the social graph (the `social` function): follow, block, mute."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from feed_api.deps import (
    CallerDep,
    CurrentUser,
    Cursor,
    Grain,
    Limit,
    ServicesDep,
    StatsDays,
    UserId,
    Viewer,
)
from feed_api.errors import error_responses
from feed_api.schemas import CreateUser, StatsOut, UserOut, UserPage

router = APIRouter(prefix="/v1", responses=error_responses(401, 422, 503))

NO_CONTENT = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    tags=["users"],
    summary="Create the caller's profile",
    description="Creates the profile of the account in the bearer token (one per account).",
    responses=error_responses(400, 409),
)
def create_profile(
    body: CreateUser, caller: CallerDep, services: ServicesDep, response: Response
) -> UserOut:
    user = services.profiles.create_profile(caller.subject, body.handle, body.display_name)
    response.headers["Location"] = f"/v1/users/{user.id}"
    return UserOut.from_domain(user)


@router.get(
    "/users/me",
    response_model=UserOut,
    tags=["users"],
    summary="The caller's profile",
    responses=error_responses(404),
)
def get_me(me: CurrentUser) -> UserOut:
    return UserOut.from_domain(me)


@router.get(
    "/users/{user_id}",
    response_model=UserOut,
    tags=["users"],
    summary="A user's profile",
    responses=error_responses(404),
)
def get_user(user_id: UserId, _: CallerDep, services: ServicesDep) -> UserOut:
    return UserOut.from_domain(services.profiles.get(user_id))


@router.get(
    "/users/{user_id}/followers",
    response_model=UserPage,
    tags=["social graph"],
    summary="Who follows a user",
    description="In ascending user id order (oldest account first), not by when they "
    "followed; page with `cursor`. Users in a block with the caller (either way) are left "
    "out.",
    responses=error_responses(400, 404),
)
def list_followers(
    user_id: UserId, viewer: Viewer, services: ServicesDep, cursor: Cursor = None, limit: Limit = 20
) -> UserPage:
    page = services.profiles.followers(user_id, cursor, limit, viewer_id=viewer)
    return UserPage.from_domain(page)


@router.get(
    "/users/{user_id}/following",
    response_model=UserPage,
    tags=["social graph"],
    summary="Whom a user follows",
    description="In ascending user id order (oldest account first), not by when they were "
    "followed; page with `cursor`. Users in a block with the caller (either way) are left "
    "out.",
    responses=error_responses(400, 404),
)
def list_following(
    user_id: UserId, viewer: Viewer, services: ServicesDep, cursor: Cursor = None, limit: Limit = 20
) -> UserPage:
    page = services.profiles.following(user_id, cursor, limit, viewer_id=viewer)
    return UserPage.from_domain(page)


@router.put(
    "/me/following/{user_id}",
    **NO_CONTENT,
    tags=["social graph"],
    summary="Follow a user",
    description="Idempotent. Refused (403) when either side blocks the other; 400 for yourself.",
    responses=error_responses(400, 403, 404),
)
def follow(user_id: UserId, me: CurrentUser, services: ServicesDep) -> None:
    services.social.follow(me.id, user_id)


@router.delete(
    "/me/following/{user_id}",
    **NO_CONTENT,
    tags=["social graph"],
    summary="Unfollow a user",
    description="Idempotent.",
    responses=error_responses(400, 404),
)
def unfollow(user_id: UserId, me: CurrentUser, services: ServicesDep) -> None:
    services.social.unfollow(me.id, user_id)


@router.put(
    "/me/blocks/{user_id}",
    **NO_CONTENT,
    tags=["social graph"],
    summary="Block a user",
    description="Idempotent. Their posts leave your feed and neither side can follow the other.",
    responses=error_responses(400, 404),
)
def block(user_id: UserId, me: CurrentUser, services: ServicesDep) -> None:
    services.social.block(me.id, user_id)


@router.delete(
    "/me/blocks/{user_id}",
    **NO_CONTENT,
    tags=["social graph"],
    summary="Unblock a user",
    responses=error_responses(400, 404),
)
def unblock(user_id: UserId, me: CurrentUser, services: ServicesDep) -> None:
    services.social.unblock(me.id, user_id)


@router.put(
    "/me/mutes/{user_id}",
    **NO_CONTENT,
    tags=["social graph"],
    summary="Mute a user",
    description="Idempotent. Their posts leave your feed; you keep following them.",
    responses=error_responses(400, 404),
)
def mute(user_id: UserId, me: CurrentUser, services: ServicesDep) -> None:
    services.social.mute(me.id, user_id)


@router.delete(
    "/me/mutes/{user_id}",
    **NO_CONTENT,
    tags=["social graph"],
    summary="Unmute a user",
    responses=error_responses(400, 404),
)
def unmute(user_id: UserId, me: CurrentUser, services: ServicesDep) -> None:
    services.social.unmute(me.id, user_id)


@router.get(
    "/users/{user_id}/stats",
    response_model=StatsOut,
    tags=["users"],
    summary="An author's engagement stats",
    description="Over all of the author's posts: impressions, likes, engagement rate, and the "
    "follows, unfollows and posts of each hour or day, from the hourly analytics roll-up.",
    responses=error_responses(404),
)
def author_stats(
    user_id: UserId, _: CallerDep, services: ServicesDep, grain: Grain = "day", days: StatsDays = 7
) -> StatsOut:
    return StatsOut.from_domain(services.stats.author_stats(user_id, grain, days))
