"""The benchmark suite keeps working: `bench.run --mode quick` runs every measurement on a small
graph against the configured stores (its own databases) and writes every section. No time is
asserted here; the numbers of a quick run mean nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("workload", "memory", "fanout", "feed_read", "http", "cold_start", "e2e_lag")

pytestmark = pytest.mark.integration


def test_quick_benchmark_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--mode", "quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for section in SECTIONS:
        assert section in result, section
    assert result["workload"]["graph"]["follow_edges"] > 0
    assert result["memory"]["entries"] > 0
    # The same timeline's ids in each encoding a home timeline has had, smallest first.
    enc = result["memory"]["by_encoding"]
    assert enc["entries"] == result["memory"]["entries_per_timeline"] > 0
    kinds = ("list", "zset_listpack", "zset_skiplist")
    assert all(enc[k]["entries"] == enc["entries"] for k in kinds), enc
    assert enc["zset_skiplist"]["encoding"] == "skiplist"
    if int(result["memory"]["zset_max_listpack_entries"]) >= enc["entries"]:
        assert enc["zset_listpack"]["encoding"] == "listpack"
        assert (
            enc["list"]["bytes_per_entry"]
            < enc["zset_listpack"]["bytes_per_entry"]
            < enc["zset_skiplist"]["bytes_per_entry"]
        ), enc
    fanout = result["fanout"]
    assert all(t["all_followers_written"] for t in fanout["by_followers"].values())
    # The measured inserts reach the lazy trim: in the steady fill at the natural rate (the
    # first follower of each post is at the threshold), in the worst case every one.
    assert fanout["timeline_trim_at"] > fanout["timeline_max_len"]
    worst = fanout["worst_case"]
    for tier, t in fanout["by_followers"].items():
        assert 0 < t["inserts_that_trimmed"] < t["inserts"], (tier, t)
        w = worst["by_followers"][tier]
        assert w["every_insert_trimmed"], (tier, w)
        assert w["inserts_that_trimmed"] == w["inserts"] > 0, (tier, w)
    for case in (fanout, worst):
        server = case["server_side"]
        assert server["inserts"] == sum(t["inserts"] for t in case["by_followers"].values())
        assert server["inserts"] > server["evalsha_calls"] > 0  # one call writes many timelines
        assert server["inserts_per_s_of_server_time"] > 1e6 / server["usec_per_call"]
    feed = result["feed_read"]
    assert feed["headline"]["level"] == "handler"
    assert set(feed["headline"]["p99_ms"]) == set(feed["groups"])
    levels = {t["target"]: t["level"] for t in feed["targets"]}
    assert levels["p99_ms_pushed_only"] == levels["p99_ms_20_celebrities_500_pushed"] == "handler"
    assert all(t["met"] is not None for t in feed["targets"])
    assert set(result["feed_read"]["groups"]) == {
        f"{c}celeb_{p}pushed" for c in (0, 5, 20) for p in (50, 500)
    }
    variants = (
        "handler_cold_post_cache",
        "handler_deep_page",
        "handler_returning_inactive",
        "handler_during_fanout",
    )
    load = feed["during_fanout_load"]
    assert load["posts"] > 0 and load["timelines_written"] > 0, load
    for name, group in feed["groups"].items():
        for variant in variants:  # measured beside the warm handler read, never empty
            assert group[variant]["n"] > 0 and group[variant]["p50_ms"] > 0, (name, variant)
    http = result["http"]
    assert "skipped" not in http, http
    assert http["cores"] == os.cpu_count()
    assert http["readers"] == sum(result["workload"]["graph"]["readers"].values())
    assert http["all_2xx"], http
    assert [(r["workers"], r["connections"]) for r in http["runs"]] == [(2, 8), (2, 32)]
    for run in http["runs"]:
        assert run["requests"] > 0 and run["non2xx"] == 0, run
        assert not any(run["socket_errors"].values()), run
        per_core = run["requests_per_s"] / http["cores"]  # both rounded to 0.1
        assert run["requests_per_s_per_core"] == pytest.approx(per_core, abs=0.1), run
        lat = run["latency_ms"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"], run
    # Both server processes answered (32 connections spread over two SO_REUSEPORT sockets).
    busiest = sorted(http["runs"][-1]["server_cpu_s_per_process"], reverse=True)
    assert len(busiest) >= 2 and busiest[1] > 0.1 * busiest[0], busiest
    assert all(s["warmup"]["non2xx"] == 0 and s["warmup"]["requests"] > 0 for s in http["servers"])
    assert set(result["cold_start"]["functions"]) == {"feed", "posts", "social", "fanout"}
    e2e = result["e2e_lag"]
    if "skipped" not in e2e:
        assert all(t["all_followers_saw_every_post"] for t in e2e["by_followers"].values())
        for label in ("no_window", "window_1s"):  # consumed in parallel, as Lambda would
            lags = e2e["parallel_consumers"][label]["by_followers"]
            assert lags and all(t["lag_all"]["n"] == t["posts"] > 0 for t in lags.values())
    for png in (
        "bench-feed-latency-quick.png",
        "bench-fanout-rate-quick.png",
        "bench-http-throughput-quick.png",
        "bench-redis-memory-quick.png",
        "bench-coldstart-quick.png",
    ):
        assert (tmp_path / png).stat().st_size > 0
