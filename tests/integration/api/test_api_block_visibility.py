"""A block hides each side from the other on every read, not only in the home feed (issue 9,
item 10): a post by id is 404, a profile's posts are an empty page, and lists of a third user
leave the other side out. Either direction of the block counts, as in the feed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.lambda_events import LambdaApi

pytestmark = pytest.mark.integration

MakeUser = Callable[..., dict[str, Any]]


def publish(posts_api: LambdaApi, user: dict[str, Any]) -> str:
    resp = posts_api.call("POST", "/v1/posts", sub=user["sub"], body={"text": "hi"})
    assert resp.status == 201, resp.text
    return resp.json()["id"]


def ids(resp: Any) -> list[str]:
    assert resp.status == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


@pytest.fixture
def world(social_api: LambdaApi, posts_api: LambdaApi, make_user: MakeUser) -> dict[str, Any]:
    """A and B, each with a post; a third user C whom both follow and who follows both; and
    an onlooker D who is in no block."""
    a, b, c, d = make_user("A"), make_user("B"), make_user("C"), make_user("D")
    for x, y in ((a, c), (b, c), (c, a), (c, b)):
        resp = social_api.call("PUT", f"/v1/me/following/{y['id']}", sub=x["sub"])
        assert resp.status == 204, resp.text
    return {
        "a": a,
        "b": b,
        "c": c,
        "d": d,
        "pa": publish(posts_api, a),
        "pb": publish(posts_api, b),
    }


@pytest.mark.parametrize("blocker", ["a", "b"])
def test_a_block_hides_each_side_from_the_other(
    social_api: LambdaApi, posts_api: LambdaApi, world: dict[str, Any], blocker: str
) -> None:
    a, b, c, d = (world[k] for k in "abcd")
    pa, pb = world["pa"], world["pb"]
    blocked = b if blocker == "a" else a
    resp = social_api.call("PUT", f"/v1/me/blocks/{blocked['id']}", sub=world[blocker]["sub"])
    assert resp.status == 204, resp.text

    for reader, other, others_post in ((b, a, pa), (a, b, pb)):
        # Not found, exactly as for a post that does not exist: nothing says it exists.
        got = posts_api.call("GET", f"/v1/posts/{others_post}", sub=reader["sub"])
        assert got.status == 404 and got.error["code"] == "not_found", got.text
        for method in ("PUT", "DELETE"):  # a 403 to a like would tell the post exists
            liked = posts_api.call(method, f"/v1/posts/{others_post}/like", sub=reader["sub"])
            assert liked.status == 404 and liked.error["code"] == "not_found", liked.text
        listed = posts_api.call("GET", f"/v1/users/{other['id']}/posts", sub=reader["sub"])
        assert ids(listed) == [] and listed.json()["next_cursor"] is None
        for kind in ("followers", "following"):
            page = social_api.call("GET", f"/v1/users/{c['id']}/{kind}", sub=reader["sub"])
            assert ids(page) == [reader["id"]], kind

    # Everyone else, and each side about itself, sees what was there.
    for post, author in ((pa, a), (pb, b)):
        for reader in (author, c, d):
            assert posts_api.call("GET", f"/v1/posts/{post}", sub=reader["sub"]).status == 200
            listed = posts_api.call("GET", f"/v1/users/{author['id']}/posts", sub=reader["sub"])
            assert ids(listed) == [post]
    for kind in ("followers", "following"):
        page = social_api.call("GET", f"/v1/users/{c['id']}/{kind}", sub=d["sub"])
        assert sorted(ids(page), key=int) == sorted([a["id"], b["id"]], key=int)

    resp = social_api.call("DELETE", f"/v1/me/blocks/{blocked['id']}", sub=world[blocker]["sub"])
    assert resp.status == 204
    assert posts_api.call("GET", f"/v1/posts/{pa}", sub=b["sub"]).status == 200
    assert ids(posts_api.call("GET", f"/v1/users/{b['id']}/posts", sub=a["sub"])) == [pb]
    page = social_api.call("GET", f"/v1/users/{c['id']}/followers", sub=b["sub"])
    assert sorted(ids(page), key=int) == sorted([a["id"], b["id"]], key=int)


def test_filtered_lists_still_page_through_everyone_else(
    social_api: LambdaApi, make_user: MakeUser
) -> None:
    # The filter is in the page query: a page is full and its cursor goes on past the
    # hidden users, never ending early or repeating.
    reader, star = make_user("Reader"), make_user("Star")
    fans = [make_user(f"Fan {i}") for i in range(7)]
    for fan in fans:
        assert (
            social_api.call("PUT", f"/v1/me/following/{star['id']}", sub=fan["sub"]).status == 204
        )
    hidden = {fans[0]["id"], fans[3]["id"], fans[4]["id"]}
    for i in (0, 3):  # one blocks the reader, the reader blocks the other
        assert (
            social_api.call("PUT", f"/v1/me/blocks/{reader['id']}", sub=fans[i]["sub"]).status
            == 204
        )
    assert social_api.call("PUT", f"/v1/me/blocks/{fans[4]['id']}", sub=reader["sub"]).status == 204

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        resp = social_api.call(
            "GET", f"/v1/users/{star['id']}/followers", sub=reader["sub"], query=params
        )
        page = ids(resp)
        cursor = resp.json()["next_cursor"]
        assert len(page) == 2 or cursor is None
        seen += page
        if cursor is None:
            break
    assert seen == sorted((f["id"] for f in fans if f["id"] not in hidden), key=int)
