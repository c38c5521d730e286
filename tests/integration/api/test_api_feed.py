"""Home feed (functions/feed/app.handler) and the fan-out worker (functions/fanout/app.handler).

Fan-out runs for real: the jobs the posts function queued go to the worker as SQS events, and
the worker reports failures per message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.lambda_events import LambdaApi, sqs_event
from tests.fakes.queues import RecordingFanoutQueue

pytestmark = pytest.mark.integration

MakeUser = Callable[..., dict[str, Any]]
FanoutHandler = Callable[[dict[str, Any]], Any]
Deliver = Callable[[], int]


def feed_ids(feed_api: LambdaApi, user: dict[str, Any], **query: Any) -> tuple[list[str], Any]:
    resp = feed_api.call("GET", "/v1/feed", sub=user["sub"], query=query)
    assert resp.status == 200, resp.text
    body = resp.json()
    assert set(body) == {"items", "next_cursor", "partial"}
    return [p["id"] for p in body["items"]], body["next_cursor"]


def test_feed_needs_a_profile_and_a_token(feed_api: LambdaApi) -> None:
    assert feed_api.call("GET", "/v1/feed").status == 401
    resp = feed_api.call("GET", "/v1/feed", sub="nobody-yet")
    assert resp.status == 404 and resp.error["code"] == "profile_required"


def test_followed_posts_appear_newest_first(
    feed_api: LambdaApi,
    posts_api: LambdaApi,
    social_api: LambdaApi,
    make_user: MakeUser,
    deliver_jobs: Deliver,
) -> None:
    reader, author = make_user(), make_user()
    assert (
        social_api.call("PUT", f"/v1/me/following/{author['id']}", sub=reader["sub"]).status == 204
    )
    assert feed_ids(feed_api, reader)[0] == []  # builds (an empty) timeline

    posts = []
    for i in range(3):
        resp = posts_api.call("POST", "/v1/posts", sub=author["sub"], body={"text": f"n{i}"})
        assert resp.status == 201, resp.text
        posts.append(resp.json())
    assert feed_ids(feed_api, reader)[0] == []  # pushed by the worker, which has not run yet
    assert deliver_jobs() == 3

    ids, cursor = feed_ids(feed_api, reader)
    assert ids == [p["id"] for p in reversed(posts)]
    assert cursor is None or feed_ids(feed_api, reader, cursor=cursor)[0] == []

    own = posts_api.call("POST", "/v1/posts", sub=reader["sub"], body={"text": "mine"}).json()
    assert feed_ids(feed_api, reader)[0][0] == own["id"]  # own posts are in your feed too


def test_paging_never_repeats(
    feed_api: LambdaApi,
    posts_api: LambdaApi,
    social_api: LambdaApi,
    make_user: MakeUser,
    deliver_jobs: Deliver,
) -> None:
    reader, author = make_user(), make_user()
    social_api.call("PUT", f"/v1/me/following/{author['id']}", sub=reader["sub"])
    feed_ids(feed_api, reader)
    posts = [
        posts_api.call("POST", "/v1/posts", sub=author["sub"], body={"text": f"p{i}"}).json()
        for i in range(7)
    ]
    deliver_jobs()

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        ids, cursor = feed_ids(feed_api, reader, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += ids
        if cursor is None:
            break
    assert seen == [p["id"] for p in reversed(posts)]


def test_muted_author_leaves_the_feed(
    feed_api: LambdaApi,
    posts_api: LambdaApi,
    social_api: LambdaApi,
    make_user: MakeUser,
    deliver_jobs: Deliver,
) -> None:
    reader, author = make_user(), make_user()
    social_api.call("PUT", f"/v1/me/following/{author['id']}", sub=reader["sub"])
    feed_ids(feed_api, reader)
    post = posts_api.call("POST", "/v1/posts", sub=author["sub"], body={"text": "x"}).json()
    deliver_jobs()
    assert feed_ids(feed_api, reader)[0] == [post["id"]]
    assert social_api.call("PUT", f"/v1/me/mutes/{author['id']}", sub=reader["sub"]).status == 204
    assert feed_ids(feed_api, reader)[0] == []


@pytest.mark.parametrize("cursor", ["garbage", "eyJiIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA"])
def test_bad_cursor_is_400(feed_api: LambdaApi, make_user: MakeUser, cursor: str) -> None:
    resp = feed_api.call("GET", "/v1/feed", sub=make_user()["sub"], query={"cursor": cursor})
    assert resp.status == 400 and resp.error["code"] == "invalid_input"
    assert "cursor" in resp.error["message"]


def test_cursor_from_another_list_is_refused(
    feed_api: LambdaApi, posts_api: LambdaApi, make_user: MakeUser
) -> None:
    # A posts-list cursor is signed for another kind: replaying it on the feed must fail.
    author = make_user()
    for i in range(2):
        posts_api.call("POST", "/v1/posts", sub=author["sub"], body={"text": f"{i}"})
    page = posts_api.call(
        "GET", f"/v1/users/{author['id']}/posts", sub=author["sub"], query={"limit": 1}
    ).json()
    assert page["next_cursor"]
    resp = feed_api.call(
        "GET", "/v1/feed", sub=author["sub"], query={"cursor": page["next_cursor"]}
    )
    assert resp.status == 400


@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_limit_out_of_range_is_422(feed_api: LambdaApi, make_user: MakeUser, limit: str) -> None:
    resp = feed_api.call("GET", "/v1/feed", sub=make_user()["sub"], query={"limit": limit})
    assert resp.status == 422 and "limit" in resp.error["message"]


def test_fanout_reports_only_the_bad_messages(
    feed_api: LambdaApi,
    posts_api: LambdaApi,
    social_api: LambdaApi,
    make_user: MakeUser,
    fanout_handler: FanoutHandler,
    fanout_jobs: RecordingFanoutQueue,
    deliver_jobs: Deliver,
) -> None:
    reader, author = make_user(), make_user()
    social_api.call("PUT", f"/v1/me/following/{author['id']}", sub=reader["sub"])
    feed_ids(feed_api, reader)
    post = posts_api.call("POST", "/v1/posts", sub=author["sub"], body={"text": "ok"}).json()
    (job,) = fanout_jobs.drain()  # the job the posts function queued
    assert job["post_id"] == int(post["id"])

    event = sqs_event(
        [
            "{this is not json",
            json.dumps(job),
            json.dumps({"kind": "teleport", "author_id": 1}),
            json.dumps({"kind": "fanout", "author_id": int(author["id"])}),  # no post_id
        ]
    )
    ids = [r["messageId"] for r in event["Records"]]
    result = fanout_handler(event)
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert sorted(failed) == sorted([ids[0], ids[2], ids[3]])
    # The good message in the same batch was processed.
    assert feed_ids(feed_api, reader)[0] == [post["id"]]


def test_fanout_all_bad_still_reports_each(fanout_handler: FanoutHandler) -> None:
    event = sqs_event(["[]", "null"])
    result = fanout_handler(event)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )


def test_fanout_refuses_an_event_that_is_not_an_sqs_batch(fanout_handler: FanoutHandler) -> None:
    # A misrouted invocation must fail loudly, not report an empty success.
    with pytest.raises(Exception, match="Unexpected batch event type"):
        fanout_handler({"Records": []})
