"""The timeline store on a Redis Cluster whose slots move under it (resharding, as ElastiCache
online resharding does): a client with the old slot map still writes and reads every timeline.
A slot migrated away: the node script is refused, the users' timelines are written one call
each, MOVED refreshes the map. A slot half-way through migration: ASK is followed. Scripts
flushed from every node: NOSCRIPT loads them again. On the test's own cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from private_cluster import PrivateCluster, private_cluster

from feed_adapters.redis.client import make_redis
from feed_adapters.redis.keys import timeline_key, user_slot
from feed_adapters.redis.timeline_store import RedisTimelineStore

pytestmark = [pytest.mark.integration, pytest.mark.own_redis]

PORTS = list(range(23031, 23037))  # bus 23131-23136
B = 10**17


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    yield from private_cluster(tmp_path_factory, PORTS, 5000)


def node(port: int) -> redis.Redis:
    return redis.Redis(port=port, decode_responses=True)


def node_id(port: int) -> str:
    return node(port).execute_command("CLUSTER", "MYID")


def masters() -> list[int]:
    rows = [r.split() for r in node(PORTS[0]).execute_command("CLUSTER", "NODES").splitlines()]
    return sorted(
        int(r[1].split("@")[0].rsplit(":", 1)[1]) for r in rows if "master" in r[2] and r[8:]
    )


def begin_migration(slot: int, source: int, target: int) -> None:
    node(target).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source))
    node(source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target))


def move_keys(slot: int, source: int, target: int) -> None:
    keys = node(source).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    if keys:
        node(source).execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)


def end_migration(slot: int, target: int) -> None:
    owner = node_id(target)
    for port in masters():
        node(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner)


def owner_port(slot: int) -> int:
    for start, end, primary, *_ in node(PORTS[0]).execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return int(primary[1])
    raise AssertionError(f"slot {slot} not covered")


def test_user_slot_is_the_slot_redis_hashes_the_keys_to(cluster: PrivateCluster) -> None:
    client = make_redis("127.0.0.1", PORTS[0], 0, cluster=True)
    for user in (1, 7, 12_345, 253_551_115_757_424_640):
        assert user_slot(user) == client.keyslot(timeline_key(user))
        assert int(node(PORTS[0]).execute_command("CLUSTER", "KEYSLOT", timeline_key(user))) == (
            user_slot(user)
        )


def test_writes_and_reads_follow_a_slot_that_moves(cluster: PrivateCluster) -> None:
    client = make_redis("127.0.0.1", PORTS[0], 0, cluster=True)
    client.flushdb()
    store = RedisTimelineStore(client, max_len=50, post_ttl_seconds=60)
    moved, asked, stays = 11, 12, 13  # users: whose slot moves, is mid-move, stays
    assert len({user_slot(u) for u in (moved, asked, stays)}) == 3
    for user in (moved, asked, stays):
        store.commit_timeline(user, [B + 1], 0)

    # A slot moved entirely, behind the client's back: its map still names the old node.
    slot = user_slot(moved)
    source = owner_port(slot)
    target = next(p for p in masters() if p != source)
    begin_migration(slot, source, target)
    move_keys(slot, source, target)
    end_migration(slot, target)
    assert client.get_node_from_key(timeline_key(moved)).port == source  # stale
    assert store.push([moved, stays], [B + 2]) == 2
    assert node(target).lrange(timeline_key(moved), 0, -1) == [str(B + 2), str(B + 1)]
    timeline, _ = store.read_candidates(moved, [], None, 10)
    assert timeline is not None and timeline.ids == [B + 2, B + 1]

    # A slot half-way: its keys already on the target, the slot still the source's (ASK).
    slot = user_slot(asked)
    source = owner_port(slot)
    target = next(p for p in masters() if p != source)
    begin_migration(slot, source, target)
    move_keys(slot, source, target)
    try:
        timeline, _ = store.read_candidates(asked, [], None, 10)
        assert timeline is not None and timeline.ids == [B + 1]
        assert store.push([asked], [B + 3]) == 1
        on_target = node(target).pipeline(transaction=False)  # the slot is not its own yet
        on_target.execute_command("ASKING").lrange(timeline_key(asked), 0, -1)
        assert on_target.execute()[1] == [str(B + 3), str(B + 1)]
        # Nothing written back on the source (it answers ASK for the slot's missing keys).
        assert node(source).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    finally:
        end_migration(slot, target)
    assert store.timeline_ids(asked) == [B + 3, B + 1]

    # Every node lost its scripts (a restart, a promoted replica): loaded again on NOSCRIPT.
    for port in masters():
        node(port).script_flush()
    assert store.push([moved, asked, stays], [B + 4]) == 3
    for user in (moved, asked, stays):
        assert store.timeline_ids(user)[0] == B + 4
