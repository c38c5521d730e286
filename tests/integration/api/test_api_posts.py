"""Posts and likes through functions/posts/app.handler (HTTP API events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.lambda_events import LambdaApi, new_subject

pytestmark = pytest.mark.integration

MakeUser = Callable[..., dict[str, Any]]
UNKNOWN_POST = "1000000000000000001"


def publish(posts_api: LambdaApi, user: dict[str, Any], text: str, **extra: Any) -> dict[str, Any]:
    resp = posts_api.call("POST", "/v1/posts", sub=user["sub"], body={"text": text, **extra})
    assert resp.status == 201, resp.text
    return resp.json()


def test_publish_and_read(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice = make_user()
    resp = posts_api.call("POST", "/v1/posts", sub=alice["sub"], body={"text": "hello"})
    assert resp.status == 201, resp.text
    post = resp.json()
    assert post["id"].isdigit() and 0 < int(post["id"]) < 2**63  # a string, never a JSON number
    assert post["author_id"] == alice["id"]
    assert post["text"] == "hello" and post["media"] == [] and post["like_count"] == 0
    assert resp.headers["location"] == f"/v1/posts/{post['id']}"

    got = posts_api.call("GET", f"/v1/posts/{post['id']}", sub=new_subject())
    assert got.status == 200 and got.json() == post


def test_publish_needs_a_profile(posts_api: LambdaApi) -> None:
    resp = posts_api.call("POST", "/v1/posts", sub=new_subject(), body={"text": "hi"})
    assert resp.status == 404 and resp.error["code"] == "profile_required"


def test_text_too_long_is_4xx(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice = make_user()
    for size in (5_000, 20_000):  # past the domain's limit, then past the schema's bound
        resp = posts_api.call("POST", "/v1/posts", sub=alice["sub"], body={"text": "x" * size})
        assert resp.status in (400, 422), resp.text
        assert "text" in resp.error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": 5},
        # Media URLs are no longer taken: media are uploaded (POST /v1/media), then attached.
        {"text": "hi", "media": [{"url": "https://x/y", "kind": "image"}]},
        {"text": "hi", "media_ids": ["12a"]},
        {"text": "hi", "media_ids": "123"},
        {"text": "hi", "author_id": "1"},
    ],
)
def test_malformed_post_is_422(posts_api: LambdaApi, make_user: MakeUser, body: Any) -> None:
    resp = posts_api.call("POST", "/v1/posts", sub=make_user()["sub"], body=body)
    assert resp.status == 422, resp.text
    assert resp.error["code"] == "validation_error" and resp.error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"text": "hello\x00world"},
        {"text": "hi", "media_ids": ["1\x00"]},
    ],
)
def test_nul_the_store_would_refuse_is_422_and_nothing_is_stored(
    posts_api: LambdaApi, make_user: MakeUser, body: Any
) -> None:
    alice = make_user()
    resp = posts_api.call("POST", "/v1/posts", sub=alice["sub"], body=body)
    # The schema states the rule (the domain checks it again: tests/unit/test_post_rules.py).
    assert resp.status == 422, resp.text
    assert resp.error["code"] == "validation_error"
    listed = posts_api.call("GET", f"/v1/users/{alice['id']}/posts", sub=alice["sub"])
    assert listed.status == 200 and listed.json()["items"] == []


def test_unknown_post_is_404(posts_api: LambdaApi, make_user: MakeUser) -> None:
    me = make_user()
    for method, path in [
        ("GET", f"/v1/posts/{UNKNOWN_POST}"),
        ("DELETE", f"/v1/posts/{UNKNOWN_POST}"),
        ("PUT", f"/v1/posts/{UNKNOWN_POST}/like"),
    ]:
        resp = posts_api.call(method, path, sub=me["sub"])
        assert resp.status == 404, (method, resp.text)
        assert resp.error["code"] == "not_found"


def test_only_the_author_deletes(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice, mallory = make_user(), make_user()
    post = publish(posts_api, alice, "mine")
    resp = posts_api.call("DELETE", f"/v1/posts/{post['id']}", sub=mallory["sub"])
    assert resp.status == 403 and resp.error["code"] == "forbidden"
    assert posts_api.call("GET", f"/v1/posts/{post['id']}", sub=alice["sub"]).status == 200

    assert posts_api.call("DELETE", f"/v1/posts/{post['id']}", sub=alice["sub"]).status == 204
    assert posts_api.call("GET", f"/v1/posts/{post['id']}", sub=alice["sub"]).status == 404


def test_like_and_unlike_are_idempotent(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    post = publish(posts_api, alice, "like me")
    path = f"/v1/posts/{post['id']}"
    for _ in range(2):
        assert posts_api.call("PUT", f"{path}/like", sub=bob["sub"]).status == 204
    assert posts_api.call("GET", path, sub=bob["sub"]).json()["like_count"] == 1
    for _ in range(2):
        assert posts_api.call("DELETE", f"{path}/like", sub=bob["sub"]).status == 204
    assert posts_api.call("GET", path, sub=bob["sub"]).json()["like_count"] == 0


def test_author_posts_paginate_newest_first(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice = make_user()
    ids = [publish(posts_api, alice, f"post {i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = posts_api.call(
            "GET", f"/v1/users/{alice['id']}/posts", sub=alice["sub"], query=query
        )
        assert resp.status == 200, resp.text
        seen += [p["id"] for p in resp.json()["items"]]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


def test_author_posts_bad_cursor_and_limit(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice = make_user()
    path = f"/v1/users/{alice['id']}/posts"
    resp = posts_api.call("GET", path, sub=alice["sub"], query={"cursor": "not-a-cursor"})
    assert resp.status == 400 and "cursor" in resp.error["message"]
    resp = posts_api.call("GET", path, sub=alice["sub"], query={"limit": 1000})
    assert resp.status == 422 and "limit" in resp.error["message"]


def test_unknown_author_posts(posts_api: LambdaApi, make_user: MakeUser) -> None:
    resp = posts_api.call("GET", "/v1/users/1000000000000000001/posts", sub=make_user()["sub"])
    assert resp.status in (200, 404), resp.text
    if resp.status == 200:
        assert resp.json()["items"] == []


def test_idempotency_key_makes_retries_safe(posts_api: LambdaApi, make_user: MakeUser) -> None:
    alice = make_user()
    key = {"Idempotency-Key": f"retry-{new_subject()[-8:]}"}

    def send(text: str) -> Any:
        return posts_api.call(
            "POST", "/v1/posts", sub=alice["sub"], body={"text": text}, headers=key
        )

    first, again = send("only once"), send("only once")
    assert first.status == 201 and again.status == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    clash = send("something else")
    assert clash.status == 409 and "Idempotency-Key" in clash.error["message"]
    bad = posts_api.call(
        "POST",
        "/v1/posts",
        sub=alice["sub"],
        body={"text": "x"},
        headers={"Idempotency-Key": "no spaces allowed"},
    )
    assert bad.status == 422 and "idempotency-key" in bad.error["message"].lower()


def test_a_post_has_an_etag_and_answers_a_conditional_get_with_304(
    posts_api: LambdaApi, make_user: MakeUser
) -> None:
    alice, bob = make_user(), make_user()
    post = publish(posts_api, alice, "cache me")
    got = posts_api.call("GET", f"/v1/posts/{post['id']}", sub=bob["sub"])
    assert got.status == 200 and got.json() == post
    etag = got.headers["etag"]
    assert etag.startswith('"') and got.headers["cache-control"] == "private, no-cache"
    again = posts_api.call(
        "GET", f"/v1/posts/{post['id']}", sub=bob["sub"], headers={"if-none-match": etag}
    )
    assert again.status == 304 and again.text == "" and again.headers["etag"] == etag
    weak = posts_api.call(
        "GET", f"/v1/posts/{post['id']}", sub=bob["sub"], headers={"if-none-match": f"W/{etag}"}
    )
    assert weak.status == 304
    # A like changes the body: the old ETag no longer matches, the new one does.
    assert posts_api.call("PUT", f"/v1/posts/{post['id']}/like", sub=bob["sub"]).status == 204
    changed = posts_api.call(
        "GET", f"/v1/posts/{post['id']}", sub=bob["sub"], headers={"if-none-match": etag}
    )
    assert changed.status == 200 and changed.json()["like_count"] == 1
    assert changed.headers["etag"] != etag
    # Deleted: 404, whatever ETag the client holds.
    assert posts_api.call("DELETE", f"/v1/posts/{post['id']}", sub=alice["sub"]).status == 204
    gone = posts_api.call(
        "GET",
        f"/v1/posts/{post['id']}",
        sub=bob["sub"],
        headers={"if-none-match": changed.headers["etag"]},
    )
    assert gone.status == 404


def test_everything_else_is_private_and_never_stored(
    posts_api: LambdaApi, feed_api: LambdaApi, make_user: MakeUser
) -> None:
    alice = make_user()
    post = publish(posts_api, alice, "mine")
    responses = [
        feed_api.call("GET", "/v1/feed", sub=alice["sub"]),
        posts_api.call("GET", f"/v1/users/{alice['id']}/posts", sub=alice["sub"]),
        posts_api.call("POST", "/v1/posts", sub=alice["sub"], body={"text": "x" * 20_000}),
        posts_api.call("GET", f"/v1/posts/{post['id']}"),  # no token: 401
    ]
    for resp in responses:
        assert resp.headers["cache-control"] == "private, no-store", (resp.status, resp.headers)
        assert "etag" not in resp.headers
