"""A store that does not answer reaches the client as 503 `unavailable` with Retry-After (or as
a degraded `partial` feed where one can be served), never as 500: the real drivers' errors go
through each adapter's translation. The other stores are the real test stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore, make_pool
from feed_adapters.redis.client import make_redis
from feed_api.app import create_app
from feed_api.auth import TokenVerifier
from feed_api.routers import feed, posts, users
from feed_wiring.root import build_services
from feed_wiring.settings import Settings
from infra.lambda_events import new_handle, new_subject
from tests.fakes.queues import RecordingFanoutQueue

pytestmark = pytest.mark.integration

NOTHING_LISTENS = 1  # port 1 on 127.0.0.1: connection refused at once


@pytest.fixture
def client_with(
    api_settings: Settings,
    token_for: Callable[..., str],
    pg_pool: Any,
    mongo_db: Any,
    redis_client: Any,
    clean_stores: None,
) -> Callable[..., tuple[TestClient, str]]:
    """A client of the whole HTTP API whose services use the given store adapters (the real
    test stores otherwise), signed in as a new user with a profile made on the real stores."""

    def make(**adapters: Any) -> tuple[TestClient, str]:
        sub = new_subject()
        healthy = build_services(
            api_settings, redis_client=redis_client, queue=RecordingFanoutQueue()
        )
        me = healthy.profiles.create_profile(sub, new_handle(), "Me")
        services = build_services(api_settings, queue=RecordingFanoutQueue(), **adapters)
        app = create_app(
            api_settings,
            services,
            [users.router, posts.router, feed.router],
            verifier=TokenVerifier.from_settings(api_settings),
        )
        client = TestClient(
            app,
            raise_server_exceptions=False,
            headers={"Authorization": f"Bearer {token_for(sub)}"},
        )
        return client, str(me.id)

    return make


def assert_unavailable(resp: Any) -> None:
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "unavailable"
    assert int(resp.headers["retry-after"]) >= 1
    assert "127.0.0.1" not in resp.text and "Errno" not in resp.text


def test_redis_down_degrades_reads_and_refuses_what_needs_it(
    client_with: Callable[..., tuple[TestClient, str]], api_settings: Settings
) -> None:
    client, _ = client_with(redis_client=make_redis(api_settings.redis_host, NOTHING_LISTENS))
    created = client.post("/v1/posts", json={"text": "while Redis is down"})
    assert created.status_code == 201, created.text  # MongoDB has it; the fan-out job repairs
    page = client.get("/v1/feed")
    assert page.status_code == 200 and page.json()["partial"] is True
    assert [p["id"] for p in page.json()["items"]] == [created.json()["id"]]
    # A delete commits in MongoDB and queues its retract job, which writes the cache tombstone
    # once Redis is back: 204, and the post is gone at once for every read that can run.
    post_id = created.json()["id"]
    assert client.delete(f"/v1/posts/{post_id}").status_code == 204
    assert client.get(f"/v1/posts/{post_id}").status_code == 404
    assert client.get("/v1/feed").json()["items"] == []


def test_mongodb_down_is_503_on_posting(
    client_with: Callable[..., tuple[TestClient, str]],
) -> None:
    dead = MongoClient(
        f"mongodb://127.0.0.1:{NOTHING_LISTENS}/",
        serverSelectionTimeoutMS=300,
        connectTimeoutMS=300,
    )
    client, me = client_with(posts=MongoPostStore(dead["feed_test"]))
    assert_unavailable(client.post("/v1/posts", json={"text": "nowhere to store it"}))
    assert_unavailable(client.get(f"/v1/users/{me}/posts"))


def test_postgresql_down_is_503(
    client_with: Callable[..., tuple[TestClient, str]], api_settings: Settings
) -> None:
    import dataclasses

    dead = dataclasses.replace(api_settings, postgres_port=NOTHING_LISTENS).postgres_dsn
    pool = make_pool(dead, min_size=0, wait_seconds=0.5)
    try:
        client, _ = client_with(graph=PostgresGraphStore(pool))
        assert_unavailable(client.get("/v1/users/me"))
        assert_unavailable(client.get("/v1/feed"))
    finally:
        pool.close()
