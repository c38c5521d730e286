"""Through the SAM stack deployed to the emulator, and nothing else: HTTP API with the JWT
authorizer -> posts function -> SQS -> event source mapping -> fan-out function -> Redis ->
feed function; and the three scheduled functions firing from their EventBridge schedules."""

from __future__ import annotations

import pytest

from feed_adapters.redis.keys import timeline_key, timeline_meta_key
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def in_timeline(redis_client, user: dict, post_id: str) -> bool:
    return redis_client.lpos(timeline_key(int(user["id"])), str(int(post_id))) is not None


def test_the_authorizer_refuses_requests_without_a_valid_token(api):
    assert api.call("GET", "/v1/feed", None).status_code == 401
    bad = api.http.get(api.base + "/v1/feed", headers={"authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401


def test_post_delete_and_unfollow_through_the_deployed_api(api, e2e_redis):
    author, fan, witness = api.user("author"), api.user("fan"), api.user("witness")
    for user in (fan, witness):
        follow = api.call("PUT", f"/v1/me/following/{author['id']}", user["sub"])
        assert follow.status_code == 204, follow.text
        assert api.feed_ids(user) == []  # the timeline now exists, empty

    post = api.call("POST", "/v1/posts", author["sub"], json={"text": "via SQS"}).json()
    # Only the fan-out function writes the post into the fan's timeline.
    wait_for(lambda: in_timeline(e2e_redis, fan, post["id"]), "fan-out into the timeline")
    assert api.feed_ids(fan) == [post["id"]]

    gone = api.call("DELETE", f"/v1/posts/{post['id']}", author["sub"])
    assert gone.status_code == 204
    assert api.feed_ids(fan) == []  # the cache tombstone hides it at once ...
    wait_for(  # ... and the retract job takes it out of the timeline
        lambda: not in_timeline(e2e_redis, fan, post["id"]), "retract from the timeline"
    )

    kept = api.call("POST", "/v1/posts", author["sub"], json={"text": "before"}).json()
    wait_for(
        lambda: (
            in_timeline(e2e_redis, fan, kept["id"]) and in_timeline(e2e_redis, witness, kept["id"])
        ),
        "fan-out of the second post",
    )
    assert api.feed_ids(fan) == [kept["id"]]
    assert api.call("DELETE", f"/v1/me/following/{author['id']}", fan["sub"]).status_code == 204
    # The feed would hide an author no longer followed even if the unfollow left the posts in
    # the timeline: check the timeline itself, which the unfollow empties of that author.
    assert not in_timeline(e2e_redis, fan, kept["id"])
    assert api.feed_ids(fan) == []

    after = api.call("POST", "/v1/posts", author["sub"], json={"text": "after"}).json()
    # "Not in the fan's timeline" alone would also hold if the fan-out never ran: the witness
    # still follows, and once the post is in its timeline the fan-out job has run (one chunk
    # for both: it skipped the fan, it did not just not get there yet).
    wait_for(lambda: in_timeline(e2e_redis, witness, after["id"]), "fan-out of the post after it")
    assert api.feed_ids(witness) == [after["id"], kept["id"]]
    assert not in_timeline(e2e_redis, fan, after["id"])
    assert api.feed_ids(fan) == []


@pytest.fixture(scope="session", autouse=True)
def schedule_scenario(api, e2e_redis, e2e_pg) -> dict:
    """State for the scheduled jobs to act on, set up as soon as this module starts (autouse),
    so that the schedules' first minute passes while the other tests run."""
    author, reader, idle = api.user("author"), api.user("reader"), api.user("idle")
    for user in (reader, idle):
        assert api.call("PUT", f"/v1/me/following/{author['id']}", user["sub"]).status_code == 204
        api.feed_ids(user)
    post = api.call("POST", "/v1/posts", author["sub"], json={"text": "counted"}).json()
    wait_for(lambda: in_timeline(e2e_redis, reader, post["id"]), "fan-out")
    assert api.feed_ids(reader) == [post["id"]]  # an impression for the roll-up

    # The reader's timeline is lost (failover): prewarm must rebuild it, nobody else reads it.
    e2e_redis.delete(timeline_key(int(reader["id"])), timeline_meta_key(int(reader["id"])))
    # The idle user has not been seen for a month: cleanup must drop their timeline.
    e2e_pg.execute(
        "UPDATE users SET last_active_at = now() - interval '30 days' WHERE id = %s",
        (int(idle["id"]),),
    )
    e2e_redis.hset(timeline_meta_key(int(idle["id"])), "built_at", 0)
    return {"author": author, "reader": reader, "idle": idle, "post": post}


@pytest.mark.run_last
def test_scheduled_functions_fire_from_their_schedules(api, e2e_redis, schedule_scenario):
    author, reader, idle, post = (
        schedule_scenario[k] for k in ("author", "reader", "idle", "post")
    )

    def stats() -> int:
        resp = api.call(
            "GET", f"/v1/posts/{post['id']}/stats", author["sub"], params={"grain": "hour"}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["totals"]["impressions"]

    # rate(1 minute): the emulator fires a minute after the rules were created, then every
    # minute, checking every 10 s; this test runs last, so that minute has usually passed.
    timeout = 80
    wait_for(
        lambda: e2e_redis.hget(timeline_meta_key(int(reader["id"])), "state") == "ready",
        "prewarm rebuilding the lost timeline",
        timeout=timeout,
        every=1,
    )
    assert in_timeline(e2e_redis, reader, post["id"])
    wait_for(
        lambda: not e2e_redis.exists(timeline_meta_key(int(idle["id"]))),
        "cleanup dropping the idle user's timeline",
        timeout=timeout,
        every=1,
    )
    assert wait_for(stats, "roll-up counting the impression", timeout=timeout, every=1) >= 1
