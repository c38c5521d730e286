"""Many commands on a Redis Cluster in one round trip per node: each command goes to the master
of its key's slot, every node's commands are written before any reply is read (the nodes work
in parallel), and the replies come back in the callers' order.

redis-py's cluster pipeline cannot carry EVALSHA (PIPELINE_BLOCKED_COMMANDS), and every
timeline script call of a fan-out batch or a feed read is one. Redirections are handled here
as redis-py's cluster client does for single commands: MOVED points the slot map at the node
it names and sends the command there again, ASK sends it once to the importing node after
ASKING, TRYAGAIN (a slot half-migrated) waits a moment and retries, NOSCRIPT loads the script
on that node. A node that cannot be reached gets the slot map refreshed and one more try (its
replica may have taken over); then the error is raised. Callers send only idempotent
commands, so a command sent twice (its reply lost) does no harm.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis import exceptions as redis_errors

if TYPE_CHECKING:
    from redis.cluster import ClusterNode, RedisCluster

# Rounds of redirection and retry before a command's error is raised.
MAX_ROUNDS = 4
TRYAGAIN_PAUSE_SECONDS = 0.02
NODE_DOWN_PAUSE_SECONDS = 0.1
_NODE_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError)
# Masters found without a live replica (node name -> until when their writes skip the WAIT,
# which would only time out): looked at again after this long.
UNREPLICATED_RECHECK_SECONDS = 5.0
_unreplicated: dict[str, float] = {}
_STILL_MOVING = (
    redis_errors.MovedError,
    redis_errors.AskError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.NoScriptError,
)


class ReplicasBehind(redis_errors.RedisError):
    """Writes a master took that fewer of its replicas than asked acknowledged in time (WAIT):
    they would be lost if the master died now, so the call fails and its caller retries."""


@dataclass(slots=True)
class NodeCommand:
    """One command: the key that routes it (its slot's master runs it), its arguments, and the
    script source when it is an EVALSHA (to load it on a node that answers NOSCRIPT)."""

    key: str
    args: tuple[Any, ...]
    script: str | None = None
    asking: ClusterNode | None = field(default=None)
    moved_to: ClusterNode | None = field(default=None)


def run_on_nodes(
    cluster: RedisCluster,
    commands: Sequence[NodeCommand],
    wait: tuple[int, int] | None = None,
    *,
    raise_on_error: bool = True,
) -> list[Any]:
    """Run `commands`, one round trip per node per round; returns their replies in order.
    Raises the first command's error that survives every round (callers turn a node that
    stays down into the store being unavailable).

    `wait` (replicas, timeout ms): each node's commands end with WAIT, and a node whose writes
    fewer replicas acknowledged than it has live ones is tried again (a replica reconnecting
    catches up from the backlog) and, in the last round, raises ReplicasBehind.

    `raise_on_error=False`: an error reply that is left (not a node down) is returned in its
    command's place instead."""
    replies: list[Any] = [None] * len(commands)
    pending = list(range(len(commands)))
    # NOSCRIPT (a replica promoted in a failover has no script cache: SCRIPT LOAD is not
    # replicated) may follow the redirections of the last round: two rounds more for it.
    for round_ in range(MAX_ROUNDS + 2):
        last = round_ >= MAX_ROUNDS - 1
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        for i in pending:
            command = commands[i]
            node = command.asking or command.moved_to or cluster.get_node_from_key(command.key)
            groups.setdefault(node.name, (node, []))[1].append(i)
        retry: list[int] = []
        refresh = pause = False
        for name, (answers, failure) in _send_all(cluster, commands, groups, wait).items():
            node, indexes = groups[name]
            if failure is not None:
                if last:
                    raise failure
                retry += indexes
                refresh = pause = True
                continue
            for i, answer in zip(indexes, answers, strict=True):
                command = commands[i]
                command.asking = None
                if isinstance(answer, redis_errors.NoScriptError) and command.script:
                    if round_ < MAX_ROUNDS + 1:
                        cluster.get_redis_connection(node).script_load(command.script)
                        retry.append(i)
                    else:
                        replies[i] = answer
                elif not isinstance(answer, redis_errors.ResponseError) or last:
                    replies[i] = answer
                elif isinstance(answer, redis_errors.AskError):
                    command.asking = cluster.get_node(answer.host, answer.port) or _add_node(
                        cluster, answer.host, answer.port
                    )
                    retry.append(i)
                elif isinstance(answer, redis_errors.MovedError):
                    # Sent again where MOVED says, whatever the slot map says meanwhile (a
                    # refresh may ask a replica that has not heard of the move yet); the map
                    # is patched as redis-py does, for the next calls.
                    cluster.nodes_manager.move_slot(answer)
                    command.moved_to = cluster.get_node(answer.host, answer.port)
                    retry.append(i)
                elif isinstance(answer, redis_errors.TryAgainError | redis_errors.ClusterDownError):
                    pause = refresh = True
                    retry.append(i)
                else:
                    replies[i] = answer
        if not retry:
            break
        if refresh:
            cluster.nodes_manager.initialize()
        if pause:
            time.sleep(NODE_DOWN_PAUSE_SECONDS if refresh else TRYAGAIN_PAUSE_SECONDS)
        pending = retry
    for reply in replies if raise_on_error else ():
        if isinstance(reply, _STILL_MOVING):
            # The cluster is still moving the slot (failover, resharding): unavailable for now.
            raise redis_errors.ClusterError(f"slot not settled: {reply}") from reply
        if isinstance(reply, redis_errors.ResponseError):
            raise reply
    return replies


def _add_node(cluster: RedisCluster, host: str, port: int) -> ClusterNode:
    """A node the slot map does not know yet (an ASK to a node just added)."""
    cluster.nodes_manager.initialize()
    node = cluster.get_node(host, port)
    if node is None:
        raise redis_errors.ClusterError(f"ASK to unknown node {host}:{port}")
    return node


def _send_all(
    cluster: RedisCluster,
    commands: Sequence[NodeCommand],
    groups: dict[str, tuple[ClusterNode, list[int]]],
    wait: tuple[int, int] | None,
) -> dict[str, tuple[list[Any], BaseException | None]]:
    """Write every node's commands, then read every node's replies: per node the replies (an
    error reply as its exception) or the connection error that failed the node."""
    sent: dict[str, tuple[Any, Any, BaseException | None, bool]] = {}
    for name, (node, indexes) in groups.items():
        pool = cluster.get_redis_connection(node).connection_pool
        try:
            connection = pool.get_connection()
        except _NODE_ERRORS as exc:
            sent[name] = (None, None, exc, False)
            continue
        packed = []
        for i in indexes:
            command = commands[i]
            if command.asking is not None:
                packed.append(("ASKING",))
            packed.append(command.args)
        waiting = wait is not None and _unreplicated.get(name, 0.0) < time.monotonic()
        if waiting:
            packed.append(("WAIT", *wait))  # type: ignore[misc]
        try:
            connection.send_packed_command(connection.pack_commands(packed))
            sent[name] = (pool, connection, None, waiting)
        except _NODE_ERRORS as exc:
            connection.disconnect()
            sent[name] = (pool, connection, exc, False)
    out: dict[str, tuple[list[Any], BaseException | None]] = {}
    for name, (pool, connection, failure, waiting) in sent.items():
        answers: list[Any] = []
        try:
            if failure is None:
                for i in groups[name][1]:
                    if commands[i].asking is not None:
                        _read(connection)
                    answers.append(_read(connection))
                if waiting:
                    acked = int(_read(connection))
                    if acked < wait[0]:  # type: ignore[index]
                        live = _live_replicas(connection)
                        if acked < live:
                            failure = ReplicasBehind(
                                f"{name}: {acked} of its {live} replicas acknowledged in time"
                            )
                        elif not live:  # no WAIT (and its timeout) until looked at again
                            _unreplicated[name] = time.monotonic() + UNREPLICATED_RECHECK_SECONDS
        except _NODE_ERRORS as exc:
            connection.disconnect()
            failure = exc
        finally:
            if connection is not None:
                pool.release(connection)
        out[name] = (answers, failure)
    return out


def _live_replicas(connection: Any) -> int:
    """The replicas of this master that the cluster does not hold failed (CLUSTER NODES from the
    master itself): one only slow or reconnecting counts, so its writes must wait for it; a
    shard whose replicas all failed (its master just took over from one) keeps taking writes,
    since nothing could fail over to them anyway."""
    connection.send_command("CLUSTER", "NODES")
    text = connection.read_response()
    rows = [line.split() for line in str(text).splitlines() if line.strip()]
    me = next(row[0] for row in rows if "myself" in row[2].split(","))
    return sum(
        1
        for row in rows
        if row[3] == me and "slave" in row[2].split(",") and "fail" not in row[2].split(",")
    )


def _read(connection: Any) -> Any:
    try:
        return connection.read_response()
    except redis_errors.ResponseError as exc:
        return exc
