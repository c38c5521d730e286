"""The benchmarks touch home timelines and author lists only through the timeline store
(feed_adapters.redis.timeline_store), never by key names, member encodings or Redis commands of
their own: a change of storage format (ZSET to LIST, other members) then changes what the bench
loads, writes and checks with it, instead of leaving it measuring a format the code no longer
uses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
# Modules that name keys or encode members: the timeline store's business.
FORBIDDEN_IMPORTS = ("feed_adapters.redis.keys", "feed_adapters.redis.scripts", "newsfeed.ids")
FORBIDDEN_NAMES = {"to_member", "timeline_key", "timeline_meta_key", "author_posts_key"}
# Redis commands on lists, sorted sets and hashes (the timeline formats and their metadata).
FORBIDDEN_CALLS = {
    *("zadd", "zrem", "zscore", "zcard", "zrange", "zrevrange", "zrangebyscore"),
    *("zrevrangebyscore", "zremrangebyrank", "lpush", "rpush", "lrange", "ltrim", "llen"),
    *("hset", "hget", "hmget", "hgetall", "dump", "restore", "register_script", "evalsha"),
}
KEY_PREFIXES = ("htl:", "htm:", "tl:", "tlm:", "ap:", "apm:", "post:")
ALLOWED_IMPORTS = {
    ("workload.py", "newsfeed.ids.EPOCH_MS"),
    ("workload.py", "newsfeed.ids.TIME_SHIFT"),
}


def _docstrings(tree: ast.Module) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if (path.name, full) in ALLOWED_IMPORTS:
                    continue
                if node.module.startswith(FORBIDDEN_IMPORTS) or alias.name in FORBIDDEN_NAMES:
                    found.append(f"{where} imports {full}")
        elif isinstance(node, ast.Import):
            found += [
                f"{where} imports {a.name}"
                for a in node.names
                if a.name.startswith(FORBIDDEN_IMPORTS)
            ]
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_CALLS:
            found.append(f"{where} calls .{node.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and node.value.startswith(KEY_PREFIXES)
        ):
            found.append(f"{where} names a key {node.value!r}")
        elif isinstance(node, ast.JoinedStr):  # f"{post.id:019d}": a member built by hand
            for part in node.values:
                spec = getattr(part, "format_spec", None)
                if spec is not None and "019d" in ast.unparse(spec):
                    found.append(f"{where} formats a member by hand")
    return found


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_goes_through_the_timeline_store(path: Path) -> None:
    assert violations(path) == []


def test_the_check_catches_hand_built_members(tmp_path: Path) -> None:
    """What bench/fanout_rate.py and bench/e2e_lag.py did before the layer restructure."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from newsfeed.timelines import timeline_key\n"
        "def count(pipe, uid, post):\n"
        "    pipe.zscore(timeline_key(uid), f'{post.id:019d}')\n"
        "    pipe.hget('tlm:{1}', 'h')\n"
    )
    found = violations(bad)
    assert any("imports newsfeed.timelines.timeline_key" in v for v in found), found
    assert any(".zscore" in v for v in found), found
    assert any("by hand" in v for v in found), found
    assert any("names a key 'tlm:{1}'" in v for v in found), found
