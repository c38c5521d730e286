"""Profiles and the social graph through functions/social/app.handler (HTTP API events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.lambda_events import LambdaApi, new_handle, new_subject

pytestmark = pytest.mark.integration

MakeUser = Callable[..., dict[str, Any]]


def profile(handle: str | None = None) -> dict[str, str]:
    return {"handle": new_handle() if handle is None else handle, "display_name": "Someone"}


def test_create_profile_then_read_it(social_api: LambdaApi) -> None:
    sub, handle = new_subject(), new_handle()
    resp = social_api.call(
        "POST", "/v1/users", sub=sub, body={"handle": handle, "display_name": "Ada"}
    )
    assert resp.status == 201, resp.text
    user = resp.json()
    assert isinstance(user["id"], str) and user["id"].isdigit()
    assert user["handle"] == handle and user["display_name"] == "Ada"
    assert user["follower_count"] == 0 and user["following_count"] == 0
    assert resp.headers["location"] == f"/v1/users/{user['id']}"
    assert "auth_subject" not in user and "fanout_mode" not in user

    me = social_api.call("GET", "/v1/users/me", sub=sub)
    assert me.status == 200 and me.json()["id"] == user["id"]
    other = social_api.call("GET", f"/v1/users/{user['id']}", sub=new_subject())
    assert other.status == 200 and other.json()["handle"] == handle


def test_second_profile_for_same_account_is_409(make_user: MakeUser, social_api: LambdaApi) -> None:
    user = make_user()
    resp = social_api.call("POST", "/v1/users", sub=user["sub"], body=profile())
    assert resp.status == 409 and resp.error["message"]


def test_taken_handle_is_409(make_user: MakeUser, social_api: LambdaApi) -> None:
    user = make_user()
    resp = social_api.call("POST", "/v1/users", sub=new_subject(), body=profile(user["handle"]))
    assert resp.status == 409, resp.text


@pytest.mark.parametrize("handle", ["", "no spaces allowed", "x" * 65])
def test_bad_handle_is_4xx_with_message(social_api: LambdaApi, handle: str) -> None:
    resp = social_api.call("POST", "/v1/users", sub=new_subject(), body=profile(handle))
    assert resp.status in (400, 422), resp.text
    assert "handle" in resp.error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"handle": "trailing_newline\n", "display_name": "Someone"},
        {"handle": "nul_in_name", "display_name": "Some\x00one"},
    ],
)
def test_profile_the_store_would_refuse_is_422_and_nothing_is_stored(
    social_api: LambdaApi, body: dict[str, str]
) -> None:
    sub = new_subject()
    resp = social_api.call("POST", "/v1/users", sub=sub, body=body)
    # The schema states the rule (the domain checks it again: tests/unit/test_post_rules.py).
    assert resp.status == 422, resp.text
    assert resp.error["code"] == "validation_error"
    assert social_api.call("GET", "/v1/users/me", sub=sub).status == 404


@pytest.mark.parametrize("sub", ["test|nul\x00sub", "test|newline\n"])
def test_token_subject_with_control_characters_is_401(social_api: LambdaApi, sub: str) -> None:
    for method, path, body in (("GET", "/v1/users/me", None), ("POST", "/v1/users", profile())):
        resp = social_api.call(method, path, sub=sub, body=body)
        assert resp.status == 401, resp.text
        assert "control characters" in resp.error["message"]


def test_caller_cannot_choose_who_they_are(social_api: LambdaApi) -> None:
    # Identity is the token's sub: a user id or subject in the body is refused, not obeyed.
    resp = social_api.call(
        "POST",
        "/v1/users",
        sub=new_subject(),
        body={**profile(), "auth_subject": "someone-else"},
    )
    assert resp.status == 422


def test_no_profile_yet(social_api: LambdaApi) -> None:
    resp = social_api.call("GET", "/v1/users/me", sub=new_subject())
    assert resp.status == 404
    assert resp.error["code"] == "profile_required"
    assert "POST /v1/users" in resp.error["message"]


def test_unknown_user_is_404(social_api: LambdaApi, make_user: MakeUser) -> None:
    me = make_user()
    resp = social_api.call("GET", "/v1/users/1000000000000000001", sub=me["sub"])
    assert resp.status == 404 and resp.error["code"] == "not_found"
    resp = social_api.call("PUT", "/v1/me/following/1000000000000000001", sub=me["sub"])
    assert resp.status == 404


def test_non_numeric_user_id_is_422(social_api: LambdaApi, make_user: MakeUser) -> None:
    resp = social_api.call("GET", "/v1/users/abc", sub=make_user()["sub"])
    assert resp.status == 422 and "user_id" in resp.error["message"]


def test_follow_unfollow_idempotent_and_counted(social_api: LambdaApi, make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    for _ in range(2):
        resp = social_api.call("PUT", f"/v1/me/following/{bob['id']}", sub=alice["sub"])
        assert resp.status == 204 and resp.text == ""
    assert (
        social_api.call("GET", f"/v1/users/{bob['id']}", sub=alice["sub"]).json()["follower_count"]
        == 1
    )
    me = social_api.call("GET", "/v1/users/me", sub=alice["sub"]).json()
    assert me["following_count"] == 1

    followers = social_api.call("GET", f"/v1/users/{bob['id']}/followers", sub=alice["sub"]).json()
    assert [u["id"] for u in followers["items"]] == [alice["id"]]
    following = social_api.call("GET", f"/v1/users/{alice['id']}/following", sub=bob["sub"]).json()
    assert [u["id"] for u in following["items"]] == [bob["id"]]

    for _ in range(2):
        assert (
            social_api.call("DELETE", f"/v1/me/following/{bob['id']}", sub=alice["sub"]).status
            == 204
        )
    bob_now = social_api.call("GET", f"/v1/users/{bob['id']}", sub=alice["sub"]).json()
    assert bob_now["follower_count"] == 0


def test_follow_yourself_is_400(social_api: LambdaApi, make_user: MakeUser) -> None:
    me = make_user()
    resp = social_api.call("PUT", f"/v1/me/following/{me['id']}", sub=me["sub"])
    assert resp.status == 400 and resp.error["message"]


def test_follow_refused_when_blocked_either_way(social_api: LambdaApi, make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    assert social_api.call("PUT", f"/v1/me/blocks/{alice['id']}", sub=bob["sub"]).status == 204
    resp = social_api.call("PUT", f"/v1/me/following/{bob['id']}", sub=alice["sub"])
    assert resp.status == 403 and resp.error["code"] == "forbidden"
    resp = social_api.call("PUT", f"/v1/me/following/{alice['id']}", sub=bob["sub"])
    assert resp.status == 403
    assert social_api.call("DELETE", f"/v1/me/blocks/{alice['id']}", sub=bob["sub"]).status == 204
    assert social_api.call("PUT", f"/v1/me/following/{bob['id']}", sub=alice["sub"]).status == 204


def test_mute_and_unmute(social_api: LambdaApi, make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    for method in ("PUT", "PUT", "DELETE", "DELETE"):
        assert social_api.call(method, f"/v1/me/mutes/{bob['id']}", sub=alice["sub"]).status == 204


def test_followers_order_is_the_documented_one(social_api: LambdaApi, make_user: MakeUser) -> None:
    star = make_user()
    older, newer = make_user(), make_user()  # user ids grow with creation time
    for fan in (newer, older):  # the older account follows last
        resp = social_api.call("PUT", f"/v1/me/following/{star['id']}", sub=fan["sub"])
        assert resp.status == 204
    resp = social_api.call("GET", f"/v1/users/{star['id']}/followers", sub=star["sub"])
    assert [u["id"] for u in resp.json()["items"]] == [older["id"], newer["id"]]
    spec = social_api.module.app.openapi()
    described = spec["paths"]["/v1/users/{user_id}/followers"]["get"]["description"]
    assert "user id" in described and "newest follow" not in described.lower()


def test_followers_pagination_with_cursor(social_api: LambdaApi, make_user: MakeUser) -> None:
    star = make_user()
    fans = [make_user() for _ in range(5)]
    for fan in fans:
        assert (
            social_api.call("PUT", f"/v1/me/following/{star['id']}", sub=fan["sub"]).status == 204
        )

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = social_api.call(
            "GET", f"/v1/users/{star['id']}/followers", sub=star["sub"], query=query
        )
        assert page.status == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [u["id"] for u in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f["id"] for f in fans)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("cursor", ["garbage", "eyJhIjoxfQ.AAAA", "x" * 600])
def test_bad_cursor_is_4xx(social_api: LambdaApi, make_user: MakeUser, cursor: str) -> None:
    me = make_user()
    resp = social_api.call(
        "GET", f"/v1/users/{me['id']}/followers", sub=me["sub"], query={"cursor": cursor}
    )
    assert resp.status in (400, 422), resp.text
    assert "cursor" in resp.error["message"]


def test_tampered_cursor_is_400(social_api: LambdaApi, make_user: MakeUser) -> None:
    star = make_user()
    for _ in range(3):
        social_api.call("PUT", f"/v1/me/following/{star['id']}", sub=make_user()["sub"])
    page = social_api.call(
        "GET", f"/v1/users/{star['id']}/followers", sub=star["sub"], query={"limit": 1}
    ).json()
    cursor = page["next_cursor"]
    assert cursor
    body, _, mac = cursor.partition(".")
    forged = ("A" if body[0] != "A" else "B") + body[1:] + "." + mac
    resp = social_api.call(
        "GET", f"/v1/users/{star['id']}/followers", sub=star["sub"], query={"cursor": forged}
    )
    assert resp.status == 400 and resp.error["code"] == "invalid_input"


@pytest.mark.parametrize("limit", [0, 101, -5])
def test_limit_out_of_range_is_422(social_api: LambdaApi, make_user: MakeUser, limit: int) -> None:
    me = make_user()
    resp = social_api.call(
        "GET", f"/v1/users/{me['id']}/following", sub=me["sub"], query={"limit": limit}
    )
    assert resp.status == 422 and "limit" in resp.error["message"]


def test_missing_and_expired_tokens_are_401(social_api: LambdaApi, token_for: Any) -> None:
    resp = social_api.call("GET", "/v1/users/me")
    assert resp.status == 401 and resp.error["code"] == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    expired = token_for(new_subject(), ttl_seconds=-3600)
    resp = social_api.call("GET", "/v1/users/me", token=expired)
    assert resp.status == 401 and "expired" in resp.error["message"]


def test_unknown_route_is_404_json(social_api: LambdaApi) -> None:
    resp = social_api.call("GET", "/v1/nothing-here", sub=new_subject())
    assert resp.status == 404 and resp.error["code"] == "not_found"
