"""Many commands on a Redis Cluster in one round trip per node: each command goes to the master
of its key's slot, every node's commands are written before any reply is read (the nodes work
in parallel), and the replies come back in the callers' order.

redis-py's cluster pipeline cannot carry EVALSHA (PIPELINE_BLOCKED_COMMANDS), and every
timeline script call of a fan-out batch or a feed read is one. Redirections are handled here
as redis-py's cluster client does for single commands: MOVED refreshes the slot map and sends
the command again, ASK sends it once to the importing node after ASKING, TRYAGAIN (a slot
half-migrated) waits a moment and retries, NOSCRIPT loads the script on that node. A node that
cannot be reached gets the slot map refreshed and one more try (its replica may have taken
over); then the error is raised. Callers send only idempotent commands, so a command sent
twice (its reply lost) does no harm.
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


@dataclass(slots=True)
class NodeCommand:
    """One command: the key that routes it (its slot's master runs it), its arguments, and the
    script source when it is an EVALSHA (to load it on a node that answers NOSCRIPT)."""

    key: str
    args: tuple[Any, ...]
    script: str | None = None
    asking: ClusterNode | None = field(default=None)


def run_on_nodes(cluster: RedisCluster, commands: Sequence[NodeCommand]) -> list[Any]:
    """Run `commands`, one round trip per node per round; returns their replies in order.
    Raises the first command's error that survives every round (callers turn a node that
    stays down into the store being unavailable)."""
    replies: list[Any] = [None] * len(commands)
    pending = list(range(len(commands)))
    for round_ in range(MAX_ROUNDS):
        last = round_ == MAX_ROUNDS - 1
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        for i in pending:
            command = commands[i]
            node = command.asking or cluster.get_node_from_key(command.key)
            groups.setdefault(node.name, (node, []))[1].append(i)
        retry: list[int] = []
        refresh = pause = False
        for name, (answers, failure) in _send_all(cluster, commands, groups).items():
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
                if not isinstance(answer, redis_errors.ResponseError) or last:
                    replies[i] = answer
                elif isinstance(answer, redis_errors.AskError):
                    command.asking = cluster.get_node(answer.host, answer.port) or _add_node(
                        cluster, answer.host, answer.port
                    )
                    retry.append(i)
                elif isinstance(answer, redis_errors.MovedError):
                    refresh = True
                    retry.append(i)
                elif isinstance(answer, redis_errors.TryAgainError | redis_errors.ClusterDownError):
                    pause = refresh = True
                    retry.append(i)
                elif isinstance(answer, redis_errors.NoScriptError) and command.script:
                    cluster.get_redis_connection(node).script_load(command.script)
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
    for reply in replies:
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
) -> dict[str, tuple[list[Any], BaseException | None]]:
    """Write every node's commands, then read every node's replies: per node the replies (an
    error reply as its exception) or the connection error that failed the node."""
    sent: dict[str, tuple[Any, Any, BaseException | None]] = {}
    for name, (node, indexes) in groups.items():
        pool = cluster.get_redis_connection(node).connection_pool
        try:
            connection = pool.get_connection()
        except _NODE_ERRORS as exc:
            sent[name] = (None, None, exc)
            continue
        packed = []
        for i in indexes:
            command = commands[i]
            if command.asking is not None:
                packed.append(("ASKING",))
            packed.append(command.args)
        try:
            connection.send_packed_command(connection.pack_commands(packed))
            sent[name] = (pool, connection, None)
        except _NODE_ERRORS as exc:
            connection.disconnect()
            sent[name] = (pool, connection, exc)
    out: dict[str, tuple[list[Any], BaseException | None]] = {}
    for name, (pool, connection, failure) in sent.items():
        answers: list[Any] = []
        try:
            if failure is None:
                for i in groups[name][1]:
                    if commands[i].asking is not None:
                        _read(connection)
                    answers.append(_read(connection))
        except _NODE_ERRORS as exc:
            connection.disconnect()
            failure = exc
        finally:
            if connection is not None:
                pool.release(connection)
        out[name] = (answers, failure)
    return out


def _read(connection: Any) -> Any:
    try:
        return connection.read_response()
    except redis_errors.ResponseError as exc:
        return exc
