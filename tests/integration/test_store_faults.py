"""Each store, down and hung, under every kind of route: the API answers within 2 s with a
success, a degraded page (`partial: true`) or 503 `unavailable` with Retry-After, never 500;
after the store is back and the queued jobs have run, what was acknowledged is there and
nothing deleted is readable.

The faulty store is reached through a TCP proxy (tests/faults/proxy.py) that refuses
connections (down) or stops forwarding (hung, as SIGSTOP does). The other stores are the real
test stores, reached directly. `pytest tests/integration/test_store_faults.py -s` prints the
table (docs/faults.md keeps a copy).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from feed_adapters.mongo.database import make_database
from feed_adapters.mongo.engagement_store import MongoEngagementStore
from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore, make_pool
from feed_adapters.redis.client import make_redis
from feed_api.app import create_app
from feed_api.auth import TokenVerifier
from feed_api.routers import feed, posts, users
from feed_wiring.root import Services, build_services
from feed_wiring.settings import Settings
from infra import mint_token
from newsfeed.errors import NotFound
from tests.fakes.queues import RecordingFanoutQueue
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.integration

BUDGET_SECONDS = 2.0
TIMEOUT_MS = 800
STORES = ("postgres", "redis", "mongodb")
MODES = ("down", "hang")
TABLE: list[tuple[str, str, str, int, float]] = []


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return mint_token.ensure_keypair(tmp_path_factory.mktemp("fault-keys"))


@pytest.fixture(scope="module")
def fault_settings(settings: Settings, keys: Any) -> Settings:
    return dataclasses.replace(
        settings, jwt_public_key_file=str(keys.public_pem), store_timeout_ms=TIMEOUT_MS
    )


@pytest.fixture(scope="module", autouse=True)
def print_table() -> Iterator[None]:
    yield
    if TABLE:
        print("\n\nstore     fault  route                                   status  ms")
        for store, mode, route, status, seconds in TABLE:
            print(f"{store:9} {mode:6} {route:40} {status:6}  {seconds * 1000:6.0f}")


class World:
    """Users and posts made on the healthy stores before the fault."""

    def __init__(self, ok: Services) -> None:
        self.ok = ok
        tag = uuid.uuid4().hex[:8]
        self.me_sub = f"fault|me_{tag}"
        self.me = ok.profiles.create_profile(self.me_sub, f"me_{tag}", "Me").id
        self.author = ok.profiles.create_profile(f"fault|a_{tag}", f"a_{tag}", "A").id
        self.stranger = ok.profiles.create_profile(f"fault|s_{tag}", f"s_{tag}", "S").id
        self.friend = ok.profiles.create_profile(f"fault|f_{tag}", f"f_{tag}", "F").id
        self.villain = ok.profiles.create_profile(f"fault|v_{tag}", f"v_{tag}", "V").id
        ok.social.follow(self.me, self.author)
        ok.social.follow(self.me, self.friend)
        ok.feed.home_feed(self.me, None, 20)
        self.author_post = ok.posts.create(self.author, "before the fault").id
        self.liked_post = ok.posts.create(self.author, "unliked during the fault").id
        ok.likes.like(self.me, self.liked_post)
        self.friend_post = ok.posts.create(self.friend, "unfollowed during the fault").id
        self.stranger_post = ok.posts.create(self.stranger, "followed during the fault").id
        self.doomed = ok.posts.create(self.me, "deleted during the fault").id
        self.newcomer_sub = f"fault|n_{tag}"


def _services(
    store: str, proxy: FaultProxy, settings: Settings, pg_pool: Any, mongo_db: Any, redis: Any
) -> tuple[Services, Any]:
    queue = RecordingFanoutQueue()
    adapters: dict[str, Any] = {
        "graph": PostgresGraphStore(pg_pool),
        "posts": MongoPostStore(mongo_db),
        "engagement": MongoEngagementStore(mongo_db),
        "redis_client": redis,
    }
    closer: Any = None
    if store == "postgres":
        dsn = dataclasses.replace(settings, postgres_port=proxy.port).postgres_dsn
        pool = make_pool(dsn, min_size=1, wait_seconds=TIMEOUT_MS / 1000)
        pool.wait(timeout=10)  # a warm instance holds an open connection when the fault hits
        adapters["graph"] = PostgresGraphStore(pool, query_timeout_ms=TIMEOUT_MS)
        closer = pool
    elif store == "redis":
        adapters["redis_client"] = make_redis(
            settings.redis_host, proxy.port, settings.redis_db, timeout_ms=TIMEOUT_MS
        )
        adapters["redis_client"].ping()
        closer = adapters["redis_client"]
    else:
        url = f"mongodb://127.0.0.1:{proxy.port}/"
        db = make_database(url, settings.mongodb_db, TIMEOUT_MS)
        db.command("ping")
        posts_store = MongoPostStore(db)
        adapters["posts"] = posts_store
        adapters["engagement"] = MongoEngagementStore(db, posts_store.breaker)
        closer = db.client
    return build_services(settings, queue=queue, **adapters), (queue, closer)


def _target(store: str, settings: Settings) -> tuple[str, int]:
    if store == "postgres":
        return settings.postgres_host, settings.postgres_port
    if store == "redis":
        return settings.redis_host, settings.redis_port
    host_port = settings.mongodb_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def _run_jobs(services: Services, queue: RecordingFanoutQueue) -> None:
    while queue.jobs:
        for job in queue.drain():
            services.fanout.handle_message(job)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("store", STORES)
def test_store_fault(
    store: str,
    mode: str,
    fault_settings: Settings,
    keys: Any,
    pg_pool: Any,
    mongo_db: Any,
    redis_client: Any,
    clean_stores: None,
) -> None:
    ok_queue = RecordingFanoutQueue()
    ok = build_services(fault_settings, redis_client=redis_client, queue=ok_queue)
    world = World(ok)
    _run_jobs(ok, ok_queue)
    proxy = FaultProxy(*_target(store, fault_settings)).start()
    bad, (bad_queue, closer) = _services(
        store, proxy, fault_settings, pg_pool, mongo_db, redis_client
    )
    app = create_app(
        fault_settings,
        bad,
        [users.router, posts.router, feed.router],
        verifier=TokenVerifier.from_settings(fault_settings),
    )
    token = mint_token.mint_token(world.me_sub, settings=fault_settings, pair=keys)
    client = TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    )
    author, villain = world.author, world.villain
    newcomer = mint_token.mint_token(world.newcomer_sub, settings=fault_settings, pair=keys)
    routes = [  # every route of the API
        ("GET /v1/users/me", "GET", "/v1/users/me", None),
        ("GET /v1/feed", "GET", "/v1/feed", None),
        ("POST /v1/posts", "POST", "/v1/posts", {"text": f"during {store} {mode}"}),
        ("GET /v1/posts/{id}", "GET", f"/v1/posts/{world.author_post}", None),
        ("PUT /v1/posts/{id}/like", "PUT", f"/v1/posts/{world.author_post}/like", None),
        ("DELETE /v1/posts/{id}/like", "DELETE", f"/v1/posts/{world.liked_post}/like", None),
        ("DELETE /v1/posts/{id}", "DELETE", f"/v1/posts/{world.doomed}", None),
        ("PUT /v1/me/following/{id}", "PUT", f"/v1/me/following/{world.stranger}", None),
        ("DELETE /v1/me/following/{id}", "DELETE", f"/v1/me/following/{world.friend}", None),
        ("PUT /v1/me/blocks/{id}", "PUT", f"/v1/me/blocks/{villain}", None),
        ("DELETE /v1/me/blocks/{id}", "DELETE", f"/v1/me/blocks/{villain}", None),
        ("PUT /v1/me/mutes/{id}", "PUT", f"/v1/me/mutes/{villain}", None),
        ("DELETE /v1/me/mutes/{id}", "DELETE", f"/v1/me/mutes/{villain}", None),
        ("GET /v1/users/{id}", "GET", f"/v1/users/{author}", None),
        ("GET /v1/users/{id}/followers", "GET", f"/v1/users/{author}/followers", None),
        ("GET /v1/users/{id}/following", "GET", f"/v1/users/{author}/following", None),
        ("GET /v1/users/{id}/posts", "GET", f"/v1/users/{author}/posts", None),
        ("GET /v1/posts/{id}/stats", "GET", f"/v1/posts/{world.author_post}/stats", None),
        ("GET /v1/users/{id}/stats", "GET", f"/v1/users/{author}/stats", None),
        (
            "POST /v1/users",
            "POST",
            "/v1/users",
            {"handle": f"n_{uuid.uuid4().hex[:8]}", "display_name": "Newcomer"},
        ),
    ]
    answers: dict[str, Any] = {}
    try:
        proxy.set_mode(mode)
        for name, method, path, body in routes:
            as_newcomer = (
                {"Authorization": f"Bearer {newcomer}"} if name == "POST /v1/users" else {}
            )
            t0 = time.perf_counter()
            resp = client.request(method, path, json=body, headers=as_newcomer)
            elapsed = time.perf_counter() - t0
            TABLE.append((store, mode, name, resp.status_code, elapsed))
            answers[name] = resp
            assert resp.status_code < 500 or resp.status_code == 503, (name, resp.text)
            if resp.status_code == 503:
                assert resp.json()["error"]["code"] == "unavailable"
                assert int(resp.headers["retry-after"]) >= 1
            assert elapsed < BUDGET_SECONDS, (name, resp.status_code, elapsed)
    finally:
        proxy.set_mode("pass")
        time.sleep(0.3)  # what a hung server had queued is processed now, as after SIGCONT
        proxy.stop()
        closer.close()

    # Repair: the jobs queued during the fault run on healthy services.
    _run_jobs(ok, bad_queue)
    _run_jobs(ok, ok_queue)
    my_feed = [p.id for p in ok.feed.home_feed(world.me, None, 50).items]
    assert world.author_post in my_feed
    created = answers["POST /v1/posts"]
    if created.status_code == 201:
        new_id = int(created.json()["id"])
        assert new_id in my_feed
        assert new_id in [p.id for p in ok.posts.author_posts(world.me, None, 50).items]
    if answers["DELETE /v1/posts/{id}"].status_code == 204:
        with pytest.raises(NotFound):
            ok.posts.get(world.doomed)
    for post_id in my_feed:  # nothing deleted is readable
        assert not ok.posts.get(post_id).is_deleted
    if answers["PUT /v1/me/following/{id}"].status_code == 204:
        following = [u.id for u in ok.profiles.following(world.me, None, 50).items]
        assert world.stranger in following
        assert world.stranger_post in my_feed  # the follow's merge was not lost
    if answers["PUT /v1/posts/{id}/like"].status_code == 204:
        assert ok.posts.get(world.author_post).like_count == 1
    if answers["DELETE /v1/posts/{id}/like"].status_code == 204:
        assert ok.posts.get(world.liked_post).like_count == 0
    if answers["DELETE /v1/me/following/{id}"].status_code == 204:
        assert world.friend_post not in my_feed
    else:
        assert world.friend_post in my_feed
    if answers["POST /v1/users"].status_code == 201:
        assert ok.profiles.get_by_subject(world.newcomer_sub).display_name == "Newcomer"
