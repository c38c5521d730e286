"""The PostgreSQL read replica (feed_adapters/postgres/replica.py) against a real primary and a
real streaming standby (pg_pair.py, ports 22432 and 22433), through the services as
build_services wires them from POSTGRES_REPLICA_HOST/PORT.

Pausing replay on the standby (`pg_wal_replay_pause()`) makes its lag as large as a test needs:
the standby keeps answering from the state it had. That shows both sides of the routing: a
read of someone else is served from that older state (the replica answers), and a user's own
follow, mute or block is in that user's next read all the same (read-your-writes). Other
processes (another Lambda function) are separate services on the same stores.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from feed_env import FeedEnv
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from pg_pair import DB, PRIMARY_PORT, STANDBY_PORT, PgPair, dsn

from feed_adapters.mongo.engagement_store import MongoEngagementStore
from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore, make_pool
from feed_adapters.postgres.replica import AS_OF_MARGIN_SECONDS, CHECK_TIMEOUT_SECONDS
from feed_wiring.root import build_services
from feed_wiring.settings import Settings
from newsfeed.errors import Forbidden
from newsfeed.fanout.rule import Threshold
from tests.fakes.queues import InlineFanoutQueue, RecordingFanoutQueue
from tests.faults.proxy import FaultProxy
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

# What a request may take when the replica is down or hung: one replica timeout at most, then
# the primary (the API's budget is 2 s, docs/faults.md).
TIMEOUT_MS = 800
BUDGET_SECONDS = 2.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgPair]:
    pair = PgPair(tmp_path_factory.mktemp("pg-pair") / "state").start()
    yield pair
    pair.close()


@pytest.fixture
def make(
    pair: PgPair, settings: Settings, redis_client: Any, mongo_db: Any, clean_stores: None
) -> Iterator[Callable[..., FeedEnv]]:
    """`make(**settings)`: the services of one process over the pair (the primary, and the
    standby unless `postgres_replica_host=None`) and the test Redis and MongoDB."""
    pair.ensure_standby()
    pair.on_primary("TRUNCATE follows, blocks, mutes, users CASCADE")
    built: list[FeedEnv] = []

    def make_env(*, recording: bool = False, **overrides: Any) -> FeedEnv:
        """`recording=True`: fan-out jobs are only collected (run them where a test says)."""
        env_settings = dataclasses.replace(
            settings,
            **{
                "postgres_port": PRIMARY_PORT,
                "postgres_db": DB,
                "postgres_replica_host": "127.0.0.1",
                "postgres_replica_port": STANDBY_PORT,
                "store_timeout_ms": TIMEOUT_MS,
                "celebrity_threshold": 1000,
                "timeline_max_len": 50,
                "fanout_chunk_size": 100,
                **overrides,
            },
        )
        queue: Any = RecordingFanoutQueue() if recording else InlineFanoutQueue()
        posts = MongoPostStore(mongo_db)
        # The graph store is the composition root's own, from the settings above.
        services = build_services(
            env_settings,
            posts=posts,
            engagement=MongoEngagementStore(mongo_db),
            redis_client=redis_client,
            queue=queue,
        )
        if not recording:
            queue.bind(services.fanout.handle_message)
        graph = services.feed._graph
        assert isinstance(graph, PostgresGraphStore)
        env = FeedEnv(
            env_settings, services, queue, graph, posts, redis_client, graph._pool, mongo_db
        )
        built.append(env)
        return env

    yield make_env
    for env in built:
        env.graph._pool.close()
        if env.graph.replica is not None:
            env.graph.replica.pool.close()


def processes(make: Callable[..., FeedEnv], **settings: Any) -> tuple[FeedEnv, FeedEnv]:
    """Two processes: one reading through the replica (`settings`), and a writer without one
    (another function: nothing it writes pins in the first)."""
    return make(**settings), make(postgres_replica_host=None)


def reads(env: FeedEnv) -> dict[str, int]:
    assert env.graph.replica is not None
    return dict(env.graph.replica.reads)


def ids(users: list[Any]) -> list[int]:
    return [u.id for u in users]


def test_the_composition_root_wires_the_replica_only_when_configured(make) -> None:
    with_replica = make()
    assert with_replica.graph.replica is not None
    assert f"127.0.0.1:{STANDBY_PORT}/" in with_replica.graph.replica.pool.conninfo
    assert make(postgres_replica_host=None).graph.replica is None


def test_reads_of_others_are_served_by_the_replica(make, pair: PgPair) -> None:
    env, writer = processes(make, replica_max_lag_ms=30_000)
    dave, bob = writer.user("dave"), writer.user("bob")
    post = writer.post(bob)
    pair.wait_replayed()
    pair.pause()
    writer.services.social.follow(dave, bob)
    assert pair.on_standby("SELECT count(*) FROM follows") == [(0,)]
    # `env` reads dave and bob from the replica's older state: no follow yet.
    assert env.services.profiles.following(dave, None, 10).items == []
    assert env.services.profiles.followers(bob, None, 10).items == []
    assert env.services.feed.home_feed(dave, None, 10).items == []
    assert reads(env) == {"replica": 3}
    pair.resume()
    pair.wait_replayed()
    wait_for(
        lambda: ids(env.services.profiles.following(dave, None, 10).items) == [bob],
        "dave's follow read from the replica once replayed",
    )
    assert [p.id for p in env.services.feed.home_feed(dave, None, 10).items] == [post]
    assert set(reads(env)) == {"replica"}


def test_a_follow_shows_in_the_followers_next_feed_read_with_replay_paused(
    make, pair: PgPair
) -> None:
    env, others = processes(make, replica_max_lag_ms=30_000)
    alice, bob, carol = others.user("alice"), others.user("bob"), others.user("carol")
    older = others.post(bob, "before alice follows")
    others.services.social.follow(alice, carol)
    carols = others.post(carol, "carol's")
    pair.wait_replayed()
    assert [p.id for p in env.services.feed.home_feed(alice, None, 10).items] == [carols]
    assert reads(env) == {"replica": 1}
    pair.pause()

    # Alice's process follows bob: her next reads there see it, the standby does not have it.
    env.services.social.follow(alice, bob)
    assert pair.on_standby("SELECT count(*) FROM follows WHERE followee_id = %s", bob) == [(0,)]
    newer = others.post(bob, "after alice follows")
    page = env.services.feed.home_feed(alice, None, 10)
    assert [p.id for p in page.items] == [newer, carols, older] and not page.partial
    assert ids(env.services.profiles.following(alice, None, 10).items) == sorted([bob, carol])
    assert alice in ids(env.services.profiles.followers(bob, None, 10, viewer_id=alice).items)

    # Mutes and blocks too: gone from alice's very next read.
    env.services.social.mute(alice, carol)
    assert [p.id for p in env.services.feed.home_feed(alice, None, 10).items] == [newer, older]
    env.services.social.block(alice, bob)
    assert env.services.feed.home_feed(alice, None, 10).items == []
    assert pair.on_standby("SELECT count(*) FROM mutes") == [(0,)]
    assert reads(env) == {"replica": 1, "primary:pinned": 5}


def test_a_write_in_one_function_shows_in_the_next_read_of_another(make, pair: PgPair) -> None:
    """On Lambda the social function follows, mutes and blocks, the feed function reads: two
    processes, both routed through the replica. The pins they share in Redis send the feed
    function's next read of the writer to the primary while the replica lacks the write."""
    feed_fn, setup = processes(make, replica_max_lag_ms=30_000)
    social_fn = make(replica_max_lag_ms=30_000)  # routed through the replica too
    alice, bob, carol = setup.user("alice"), setup.user("bob"), setup.user("carol")
    post, carols = setup.post(bob, "bob's"), setup.post(carol, "carol's")
    pair.wait_replayed()
    assert feed_fn.services.feed.home_feed(alice, None, 10).items == []
    assert reads(feed_fn) == {"replica": 1}
    pair.pause()

    social_fn.services.social.follow(alice, bob)
    assert pair.on_standby("SELECT count(*) FROM follows") == [(0,)]
    assert [p.id for p in feed_fn.services.feed.home_feed(alice, None, 10).items] == [post]
    assert reads(feed_fn) == {"replica": 1, "primary:pinned": 1}
    # A reader who wrote nothing is still served by the replica.
    assert feed_fn.services.feed.home_feed(carol, None, 10).items[0].id == carols
    assert reads(feed_fn)["replica"] == 2
    social_fn.services.social.block(alice, bob)
    assert feed_fn.services.feed.home_feed(alice, None, 10).items == []


def test_a_follow_that_finds_itself_made_already_still_shows_in_the_next_read(
    make, pair: PgPair
) -> None:
    # Another process (a retried request, a second device) committed the follow first; this
    # one changes nothing, and its user's next read must show the follow all the same.
    env, others = processes(make, replica_max_lag_ms=30_000)
    alice, bob = others.user("alice"), others.user("bob")
    post = others.post(bob)
    pair.wait_replayed()
    assert env.services.feed.home_feed(alice, None, 10).items == []
    pair.pause()
    others.services.social.follow(alice, bob)
    env.services.social.follow(alice, bob)  # already following: a no-op
    assert [p.id for p in env.services.feed.home_feed(alice, None, 10).items] == [post]
    assert reads(env) == {"replica": 1, "primary:pinned": 1}


def test_a_replica_lagging_beyond_the_bound_is_not_read(make, pair: PgPair) -> None:
    env, writer = processes(make, replica_max_lag_ms=300, replica_check_ms=50)
    dave, bob = writer.user("dave"), writer.user("bob")
    pair.wait_replayed()
    assert env.services.profiles.following(dave, None, 10).items == []
    assert reads(env) == {"replica": 1}
    pair.pause()
    writer.services.social.follow(dave, bob)
    # Within the bound the replica still answers (its older state) ...
    assert env.services.profiles.following(dave, None, 10).items == []
    time.sleep(0.4)
    # ... past it the primary does, and the follow is there.
    assert ids(env.services.profiles.following(dave, None, 10).items) == [bob]
    assert [p.id for p in env.services.feed.home_feed(dave, None, 10).items] == []
    assert reads(env) == {"replica": 2, "primary:lagging": 2}
    assert env.graph.replica.lag() > 0.3
    pair.resume()
    pair.wait_replayed()
    time.sleep(0.06)  # the next check
    assert ids(env.services.profiles.following(dave, None, 10).items) == [bob]
    assert reads(env)["replica"] == 3


def test_an_idle_primary_is_no_lag(make, pair: PgPair) -> None:
    # Lag is what the replica lacks, not how long since it replayed: with nothing committed,
    # a paused standby is as good as any. A WAL segment switch leaves the primary's insert
    # position past a page header with no record, which the standby never reports: no lag.
    env, writer = processes(make, replica_max_lag_ms=300, replica_check_ms=50)
    dave = writer.user("dave")
    pair.on_primary("SELECT pg_switch_wal()")
    pair.wait_replayed()
    pair.pause()
    for _ in range(4):
        time.sleep(0.2)
        assert env.services.profiles.following(dave, None, 10).items == []
    assert reads(env) == {"replica": 4}
    assert env.graph.replica.lag() < 0.3


def test_a_new_user_is_read_from_the_primary_when_the_replica_lacks_them(
    make, pair: PgPair
) -> None:
    # Created by another process (the social function) just before their first feed read
    # here: absent on the replica means "ask the primary", never 404 (users are not deleted).
    env, writer = processes(make, replica_max_lag_ms=30_000)
    someone = writer.user("someone")
    pair.wait_replayed()
    env.services.profiles.followers(someone, None, 10)
    pair.pause()
    newcomer = writer.user("newcomer")
    assert env.services.feed.home_feed(newcomer, None, 10).items == []
    assert env.services.profiles.followers(newcomer, None, 10).items == []
    assert reads(env) == {"replica": 1, "primary:retried": 2}


def test_with_the_standby_stopped_every_graph_route_still_works(make, pair: PgPair) -> None:
    env = make()
    alice, bob, carol = env.user("alice"), env.user("bob"), env.user("carol")
    env.services.social.follow(bob, carol)
    post = env.post(carol)
    pair.wait_replayed()
    pair.stop_standby()
    time.sleep(env.graph.replica.max_lag + 0.3)  # the pins from the writes above are gone

    def timed(call: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = call()
        assert time.monotonic() - started < BUDGET_SECONDS
        return result

    services = env.services
    timed(lambda: services.social.follow(alice, carol))
    assert [p.id for p in timed(lambda: services.feed.home_feed(bob, None, 10)).items] == [post]
    followers = timed(lambda: services.profiles.followers(carol, None, 10))
    assert ids(followers.items) == sorted([alice, bob])
    assert ids(timed(lambda: services.profiles.following(bob, None, 10)).items) == [carol]
    env.redis.flushdb()  # every timeline cold: prewarm has work
    report = timed(services.prewarm.run)
    assert (report.failed, report.warmed) == (0, 3)
    assert timed(services.cleanup.run).dropped == 0
    timed(lambda: services.social.mute(bob, carol))
    assert timed(lambda: services.feed.home_feed(bob, None, 10)).items == []
    timed(lambda: services.social.block(alice, carol))
    # Every read went to the primary: those of users who had just written (pinned), and the
    # others because the replica was found down (unavailable) or failed under them.
    assert "replica" not in reads(env), reads(env)
    assert reads(env).get("primary:unavailable", 0) + reads(env).get("primary:failed", 0) > 0

    # Back: once the cool-down is over, reads return to the replica.
    pair.ensure_standby()
    wait_for(
        lambda: (
            ids(services.profiles.following(bob, None, 10).items) == [carol]
            and reads(env).get("replica", 0) > 0
        ),
        "reads back on the replica",
    )


@pytest.mark.parametrize("fault", ["down", "hang"])
def test_a_replica_down_or_hung_costs_a_request_at_most_one_timeout(
    make, pair: PgPair, fault: str
) -> None:
    proxy = FaultProxy("127.0.0.1", STANDBY_PORT).start()
    try:
        env, writer = processes(make, postgres_replica_port=proxy.port)
        dave, bob = writer.user("dave"), writer.user("bob")
        writer.services.social.follow(dave, bob)
        pair.wait_replayed()
        assert ids(env.services.profiles.following(dave, None, 10).items) == [bob]
        assert reads(env) == {"replica": 1}
        proxy.set_mode(fault)
        time.sleep(env.graph.replica.check_interval)  # the next read checks it again
        took = []
        for _ in range(5):
            started = time.monotonic()
            assert ids(env.services.profiles.following(dave, None, 10).items) == [bob]
            took.append(time.monotonic() - started)
        # The first read meets the fault: its check of the replica waits at most
        # CHECK_TIMEOUT_SECONDS (for a connection when down, for an answer when hung); the
        # others skip the replica for the cool-down.
        assert took[0] < CHECK_TIMEOUT_SECONDS + 0.2, took
        assert max(took[1:]) < 0.05, took
        assert reads(env) == {"replica": 1, "primary:unavailable": 5}
        print(f"\nreplica {fault}: reads took {[round(t * 1000) for t in took]} ms")
    finally:
        proxy.stop()


def test_a_graph_read_from_a_replica_behind_the_cache_does_not_take_it_back(
    make, pair: PgPair
) -> None:
    # The cache holds a reader's graph read from the primary (the replica was unreachable),
    # newer than what the replica has replayed. The replica answers again, behind that
    # version: its answer is not used and does not replace the cached graph.
    proxy = FaultProxy("127.0.0.1", STANDBY_PORT).start()
    try:
        env, writer = processes(make, postgres_replica_port=proxy.port, replica_max_lag_ms=30_000)
        reader, bob = writer.user("reader"), writer.user("bob")
        pair.wait_replayed()
        assert env.services.feed.home_feed(reader, None, 10).items == []
        assert reads(env) == {"replica": 1}
        pair.pause()
        writer.services.social.follow(reader, bob)
        bobs = writer.post(bob)
        proxy.set_mode("down")
        time.sleep(env.graph.replica.check_interval)  # the next read checks it again
        assert [p.id for p in env.services.feed.home_feed(reader, None, 10).items] == [bobs]
        cached = env.graph._graph_cache.get(reader)
        assert cached is not None and bob in cached.graph.followees
        proxy.set_mode("pass")
        wait_for(
            lambda: (
                [p.id for p in env.services.feed.home_feed(reader, None, 10).items] == [bobs]
                and reads(env).get("primary:retried", 0) > 0
            ),
            "a read that asked the replica, found it behind and asked the primary",
        )
        assert env.graph._graph_cache.get(reader).version == cached.version
        # The replica really is behind: read alone, it has the reader without bob.
        fresh = make(postgres_port=STANDBY_PORT, postgres_replica_host=None)
        assert fresh.graph.reader_graph(reader, 7).followees == {}
    finally:
        proxy.stop()


def test_fan_out_pushes_to_a_follower_the_replica_does_not_have_yet(make, pair: PgPair) -> None:
    # The follow commits (and merges the author's list so far) just before the post; the
    # fan-out worker reads through a replica that has not replayed it. The post must still
    # reach the new follower's timeline: nothing else would put it there.
    fanout = make(replica_max_lag_ms=30_000, fanout_chunk_size=2)
    social = make(postgres_replica_host=None, recording=True)  # its jobs run in `fanout`
    author = social.user("author")
    followers = [social.user(f"follower{i}") for i in range(4)]
    for follower in followers:
        social.services.social.follow(follower, author)
        social.feed(follower)  # a timeline to push into
    pair.wait_replayed()
    pair.pause()
    newcomer = social.user("newcomer")
    social.services.social.follow(newcomer, author)
    social.feed(newcomer)
    post = social.post(author)
    for job in social.queue.drain():
        fanout.services.fanout.handle_message(job)
    for follower in [*followers, newcomer]:
        assert fanout.timeline(follower)[:1] == [post], follower
    # The head read the primary; its chunks, run right after it, too: the replica could not
    # be known to hold what the head saw.
    assert reads(fanout) == {"primary:too_recent": 3}


def test_a_fan_out_chunk_reads_the_replica_once_it_holds_what_its_head_saw(
    make, pair: PgPair
) -> None:
    fanout, social = processes(make, replica_max_lag_ms=30_000)
    author, early, late = social.user("author"), social.user("early"), social.user("late")
    social.services.social.follow(early, author)
    pair.wait_replayed()
    head_read_at = int(time.time() * 1000)  # when a head job planned a chunk
    time.sleep(AS_OF_MARGIN_SECONDS + 0.05)
    # A busy worker has checked the replica since (a check samples the primary's position),
    # and found it holding all of it. Checked until so: WAL the primary writes by itself (its
    # standby snapshot every 15 s, say) can land just before a check, and the replica replays
    # it only a WAL writer delay later (the fresh-clone CI run at 1c63d87 hit that once).
    replica = fanout.graph.replica
    assert replica is not None
    for _ in range(20):
        pair.wait_replayed()
        time.sleep(replica.check_interval)  # so the next read checks again
        assert fanout.services.profiles.following(early, None, 10).items
        if time.time() - replica.lag() >= head_read_at / 1000 + AS_OF_MARGIN_SECONDS:
            break
    served = reads(fanout)["replica"]
    pair.pause()
    social.services.social.follow(late, author)  # after the head's read: not the chunk's
    everyone: dict[str, Any] = {"active_days": None}
    graph = fanout.graph
    assert graph.follower_ids_in_range(author, 0, 2**62, **everyone, as_of_ms=head_read_at) == [
        early
    ]
    assert reads(fanout) == {"replica": served + 1}
    # Stamped after the pause, or not at all: the primary answers, with the late follower.
    now = int(time.time() * 1000)
    both = sorted([early, late])
    assert graph.follower_ids_in_range(author, 0, 2**62, **everyone, as_of_ms=now) == both
    assert graph.follower_ids_in_range(author, 0, 2**62, **everyone) == both
    assert reads(fanout) == {"replica": served + 1, "primary:too_recent": 1}


# -- model-based: the graph cache and read-your-writes under random lag ---------------------------

N_USERS = 4
user = st.integers(0, N_USERS - 1)
pair_of_users = st.tuples(user, st.integers(1, N_USERS - 1)).map(
    lambda t: (t[0], (t[0] + t[1]) % N_USERS)
)
step = st.tuples(
    st.sampled_from(["follow", "follow", "unfollow", "mute", "unmute", "block", "unblock"]),
    pair_of_users,
    st.booleans(),  # written by the routed process (else by another one)
    st.sampled_from(["keep", "keep", "pause", "resume"]),
)


def change(store: PostgresGraphStore, op: str, x: int, y: int) -> set[int]:
    """Make the change (whatever it finds: a no-op too); the users it pins in `store`."""
    threshold = Threshold.of(1000)
    if op == "follow":
        try:
            store.follow(x, y, threshold)
        except Forbidden:  # across a block: refused, nothing written
            return set()
    elif op == "unfollow":
        store.unfollow(x, y, threshold)
    elif op == "block":
        store.block(x, y, threshold)
    else:
        getattr(store, op)(x, y)  # mute, unmute, unblock
    return {x} if op in ("mute", "unmute") else {x, y}


@hyp_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_graphs_through_a_lagging_replica_never_go_back_and_show_own_writes(
    pair: PgPair, steps: list[tuple[str, tuple[int, int], bool, str]]
) -> None:
    pair.ensure_standby()
    pair.on_primary("TRUNCATE follows, blocks, mutes, users CASCADE")
    primary, standby = make_pool(dsn(PRIMARY_PORT)), make_pool(dsn(STANDBY_PORT), name="replica")
    try:
        routed = PostgresGraphStore(
            primary, replica_pool=standby, replica_max_lag_ms=30_000, replica_check_ms=20
        )
        other = PostgresGraphStore(primary)
        base = abs(hash(tuple(steps))) % 10**12 * 100
        uids = [
            other.create_user(base + i, f"m|{base + i}", f"m{base + i}", "M").id
            for i in range(N_USERS)
        ]
        pair.wait_replayed()
        seen: dict[int, tuple[int, int]] = {}
        own_writes: set[int] = set()

        def read_all() -> None:
            for uid in uids:
                got = routed.reader_graph(uid, 7)
                truth = PostgresGraphStore(primary).reader_graph(uid, 7)
                cached = routed._graph_cache.get(uid)
                assert got is not None and truth is not None and cached is not None
                versions = (cached.version, cached.epoch)
                previous = seen.get(uid, (0, 0))
                assert versions >= previous and versions[1] >= previous[1], "back in time"
                seen[uid] = versions
                if uid in own_writes:  # pinned: the primary's graph, own writes included
                    assert got == truth

        read_all()
        for op, (a, b), by_routed, replay in steps:
            if replay == "pause":
                pair.pause()
            elif replay == "resume":
                pair.resume()
            writer = routed if by_routed else other
            pinned = change(writer, op, uids[a], uids[b])
            if by_routed:
                own_writes |= pinned
            read_all()
        # Caught up: every read is the primary's graph again, from the replica or not.
        pair.resume()
        pair.wait_replayed()
        time.sleep(0.03)
        own_writes.clear()
        read_all()
        for uid in uids:
            assert routed.reader_graph(uid, 7) == PostgresGraphStore(primary).reader_graph(uid, 7)
    finally:
        primary.close()
        standby.close()


def test_an_aurora_reader_is_used_while_its_readers_lag_within_the_bound(
    make, pair: PgPair
) -> None:
    """Aurora readers report their lag in aurora_replica_status(), not by replay positions: the
    router takes the worst reader's replica_lag_in_msec. Here a look-alike of the function
    (replicated to the standby) reports what the test writes into a table."""
    pair.on_primary(
        "CREATE TABLE aurora_fake (server_id text, session_id text, replica_lag_in_msec real)"
    )
    pair.on_primary(
        "CREATE FUNCTION aurora_replica_status() RETURNS SETOF aurora_fake LANGUAGE sql"
        " AS 'SELECT * FROM aurora_fake'"
    )
    try:
        pair.on_primary(
            "INSERT INTO aurora_fake VALUES ('writer', 'MASTER_SESSION_ID', 0),"
            " ('reader-1', 'a1', 20), ('reader-2', 'a2', 35)"
        )
        env, writer = processes(make, replica_max_lag_ms=300, replica_check_ms=50)
        dave = writer.user("dave")
        pair.wait_replayed()
        assert env.services.profiles.following(dave, None, 10).items == []
        assert reads(env) == {"replica": 1}
        # One reader falls behind beyond the bound: every read goes to the writer.
        pair.on_primary(
            "UPDATE aurora_fake SET replica_lag_in_msec = 5000 WHERE server_id = 'reader-2'"
        )
        pair.wait_replayed()
        time.sleep(0.06)  # past the check interval
        assert env.services.profiles.following(dave, None, 10).items == []
        assert reads(env) == {"replica": 1, "primary:lagging": 1}
        # No reader reports (all gone): not a usable replica.
        pair.on_primary("DELETE FROM aurora_fake WHERE session_id <> 'MASTER_SESSION_ID'")
        pair.wait_replayed()
        time.sleep(0.06)
        assert env.services.profiles.following(dave, None, 10).items == []
        assert reads(env)["primary:unavailable"] == 1
    finally:
        pair.on_primary("DROP FUNCTION aurora_replica_status()")
        pair.on_primary("DROP TABLE aurora_fake")
