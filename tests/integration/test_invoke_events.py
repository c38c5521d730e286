"""Every sample event in events/ does what its route says through `make invoke`'s path
(infra/invoke.py): each HTTP event gets its route's real status, a body with the data the
samples name, and its effect on the stores; the SQS batch no failures, the scheduled events a
job report. Before each event the test stores hold the users and the post the samples' ids
name (alice, bob, alice's post). Real stores (the test databases); fan-out jobs go to a queue
of their own in the AWS emulator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from feed_env import FeedEnv

from infra import invoke, samples
from newsfeed.errors import NotFound

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

EVENTS = sorted((ROOT / "events").glob("*.json"))
REPORT_KEYS = {
    "prewarm": {"active_users", "warmed", "failed", "seconds"},
    "repair": {"delivered", "retracted", "backfills", "seconds"},
    "impressions": {"impressions", "buffered_events", "locked_out", "seconds"},
    "rollup": {"hours", "days", "rows", "seconds", "events_drained"},
    "cleanup": {
        "timelines_seen",
        "dropped",
        "claims_expired",
        "event_days_dropped",
        "legacy_events_deleted",
        "impression_counts_deleted",
        "author_lists_seen",
        "author_lists_dropped",
        "media_removed",
        "media_claims_released",
        "seconds",
    },
}


def function_of(path: Path) -> str:
    return path.name.split("-", 1)[0]


@pytest.fixture(scope="module")
def local_env(settings) -> Any:
    env = {
        field.name.upper(): "" if (value := getattr(settings, field.name)) is None else str(value)
        for field in dataclasses.fields(settings)
    }
    from infra.local_queues import ensure_fanout_queues

    env["FANOUT_QUEUE_URL"], _ = ensure_fanout_queues(settings, name="feed-invoke-test-fanout")
    # The media sample's bucket (the function deletes the upload its event names).
    from infra.deploy import aws

    env["MEDIA_BUCKET"] = "feed-invoke-test-media"
    aws(settings, "s3").create_bucket(Bucket=env["MEDIA_BUCKET"])
    env["JWT_PUBLIC_KEY_FILE"] = ""  # as on a developer's machine: the local key pair
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name, value in invoke.local_environment("invoke-test").items():
            mp.setenv(name, value)
        yield


def test_every_function_has_sample_events():
    assert {function_of(p) for p in EVENTS} == set(invoke.function_names())


def test_every_route_has_a_sample_event():
    import importlib

    routes = set()
    for module in ("users", "posts", "feed"):
        router = importlib.import_module(f"feed_api.routers.{module}").router
        routes |= {f"{m} {r.path}" for r in router.routes for m in r.methods}
    samples = {json.loads(p.read_text()).get("routeKey") for p in EVENTS}
    assert routes <= samples


ALICE, BOB, POST = samples.ALICE_ID, samples.BOB_ID, samples.POST_ID


def seeded(make_env: Callable[..., FeedEnv], *, seed: bool = True) -> FeedEnv:
    """The test stores with what `make samples` puts into a developer's (fan-out inline)."""
    env = make_env()
    if seed:
        samples.seed(
            env.settings,
            graph=env.graph,
            posts=env.posts,
            engagement=env.events,
            redis_client=env.redis,
            queue=env.queue,
        )
    return env


def item_ids(body: Any) -> list[int]:
    return [int(item["id"]) for item in body["items"]]


def following(env: FeedEnv, a: int, b: int) -> bool:
    return env.graph.is_following(a, b)


def muted(env: FeedEnv) -> frozenset[int]:
    graph = env.graph.reader_graph(ALICE, env.settings.active_days)
    assert graph is not None
    return graph.muted


@dataclasses.dataclass(frozen=True)
class Route:
    """What one sample must answer, with `before` run on the seeded stores and `after` checked
    on them once the function answered."""

    status: int
    body: Callable[[Any], bool] = lambda body: body is None  # 204: no body
    before: Callable[[FeedEnv], Any] = lambda env: None
    after: Callable[[FeedEnv], bool] = lambda env: True
    seed: bool = True


def like_count(env: FeedEnv) -> int:
    return env.services.posts.get(POST).like_count


def post_gone(env: FeedEnv) -> bool:
    try:
        env.services.posts.get(POST)
    except NotFound:
        return True
    return False


ROUTES: dict[str, Route] = {
    "feed-home-feed.json": Route(200, lambda b: item_ids(b) == [POST]),
    "posts-author-posts.json": Route(200, lambda b: item_ids(b) == [POST]),
    "posts-create-post.json": Route(
        201,
        lambda b: b["author_id"] == str(ALICE) and b["text"] == "Hello from make invoke",
        after=lambda env: len(env.services.posts.author_posts(ALICE, None, 10).items) == 2,
    ),
    "posts-delete-post.json": Route(204, after=post_gone),
    "posts-get-post.json": Route(
        200, lambda b: b["id"] == str(POST) and b["author_id"] == str(ALICE)
    ),
    "posts-like.json": Route(204, after=lambda env: like_count(env) == 1),
    "posts-unlike.json": Route(
        204,
        before=lambda env: env.services.likes.like(ALICE, POST),
        after=lambda env: like_count(env) == 0,
    ),
    "posts-post-stats.json": Route(200, lambda b: b["id"] == str(POST) and b["grain"] == "hour"),
    "social-author-stats.json": Route(200, lambda b: b["id"] == str(ALICE) and b["grain"] == "day"),
    "social-create-profile.json": Route(
        201,
        lambda b: b["handle"] == "alice" and b["display_name"] == "Alice",
        after=lambda env: env.services.profiles.get_by_subject("alice").handle == "alice",
        seed=False,
    ),
    "social-get-me.json": Route(200, lambda b: b["id"] == str(ALICE) and b["handle"] == "alice"),
    "social-get-user.json": Route(200, lambda b: b["id"] == str(ALICE)),
    "social-followers.json": Route(200, lambda b: item_ids(b) == [BOB]),
    "social-following.json": Route(200, lambda b: item_ids(b) == [BOB]),
    "social-follow.json": Route(
        204,
        before=lambda env: env.services.social.unfollow(ALICE, BOB),
        after=lambda env: following(env, ALICE, BOB),
    ),
    "social-unfollow.json": Route(204, after=lambda env: not following(env, ALICE, BOB)),
    "social-block.json": Route(
        204,
        after=lambda env: (
            env.graph.blocked_either(ALICE, BOB)
            and not following(env, ALICE, BOB)
            and not following(env, BOB, ALICE)
        ),
    ),
    "social-unblock.json": Route(
        204,
        before=lambda env: env.services.social.block(ALICE, BOB),
        after=lambda env: not env.graph.blocked_either(ALICE, BOB),
    ),
    "social-mute.json": Route(204, after=lambda env: BOB in muted(env)),
    "social-unmute.json": Route(
        204,
        before=lambda env: env.services.social.mute(ALICE, BOB),
        after=lambda env: BOB not in muted(env),
    ),
}
HTTP_EVENTS = [p for p in EVENTS if "routeKey" in p.read_text()]


def test_every_http_sample_has_its_expected_answer():
    assert {p.name for p in HTTP_EVENTS} == set(ROUTES)


@pytest.mark.parametrize("path", HTTP_EVENTS, ids=lambda p: p.name)
def test_http_sample_answers_as_its_route(path: Path, local_env, make_env) -> None:
    route = ROUTES[path.name]
    env = seeded(make_env, seed=route.seed)
    route.before(env)
    response = invoke.invoke(function_of(path), json.loads(path.read_text()))
    assert response["statusCode"] == route.status, response
    body = json.loads(response["body"]) if response["body"] else None
    assert route.body(body), body
    assert route.after(env), f"{path.name}: the route answered but did not do its work"


@pytest.mark.parametrize("path", [p for p in EVENTS if p not in HTTP_EVENTS], ids=lambda p: p.name)
def test_sample_event_is_accepted(path: Path, local_env, make_env):
    seeded(make_env)
    function = function_of(path)
    response = invoke.invoke(function, json.loads(path.read_text()))
    if function == "fanout":
        assert response == {"batchItemFailures": []}
    elif function == "media":
        # The sample's key names no medium of the stores (upload one to see it processed).
        assert response == {"outcomes": {"ignored": 1}}
    else:
        assert set(response) == REPORT_KEYS[function]
