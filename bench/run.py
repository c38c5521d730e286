"""Benchmarks of the feed platform, each beside its reference measured in the same run.

    .venv/bin/python -m bench.run --mode full      # make bench        (~100k users, ~4M edges)
    .venv/bin/python -m bench.run --mode quick     # make bench-quick  (seconds; run by make test)

Options: --users N, --seed S, --only fanout,feed,http,coldstart,e2e (memory comes with the load),
--out FILE. Results: JSON (bench/results/full-latest.json and a timestamped copy for full runs),
PNG plots (docs/img/ for full runs). The quick mode checks that everything runs; its numbers
mean nothing.

Stores: the configured servers (POSTGRES_*, REDIS_*, MONGODB_*, AWS_ENDPOINT_URL), in the bench's
own databases (see bench/stores.py), which each run empties and reloads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cold_start, e2e_lag, fanout_rate, feed_read, http_read, plots, stores, workload
from bench.stores import ROOT
from infra import lambda_events, mint_token

SECTIONS = ("workload", "fanout", "feed_read", "http", "cold_start", "e2e_lag", "memory")

MODES: dict[str, dict[str, Any]] = {
    "full": {
        # Posts sized for FerretDB: its `$in` reads and the MongoDB pull baseline scan the
        # collection (point reads by the string ids are pushed down since they became strings).
        "spec": workload.WorkloadSpec(
            poster_pool=1_500, posts_per_poster=8, posts_per_celebrity=30
        ),
        "threshold": None,  # the configured CELEBRITY_THRESHOLD (10,000)
        "timeline_owners": 40_000,
        "fanout_posts_per_author": 3,
        "ref_requests": 300_000,
        "reads_per_group": 600,
        # Each variant read pays a set-up (an eviction, a rebuild): 40 per group keep the
        # section's cost near a minute; the cold post cache reads take ~0.5 s each on FerretDB.
        "variant_reads": 40,
        "baseline_reads": 200,
        "mongo_baseline_reads": 3,
        "read_seconds": 45.0,
        # HTTP through the dev server (bench/http_read.py's shapes): one process, one per core
        # as uvicorn's workers and as SO_REUSEPORT processes, two per core.
        "http_servers": lambda cpus: [
            (1, "single"),
            (cpus, "uvicorn_workers"),
            (cpus, "reuse_port"),
            (2 * cpus, "reuse_port"),
        ],
        "http_connections": (8, 32),
        "http_seconds": 15,
        "http_warmup_seconds": 3,
        "coldstart_repeats": 7,
        "e2e_posts": {100: 30, 1_000: 30, 9_999: 15},
        "e2e_seconds": 240.0,
    },
    "quick": {
        "spec": workload.WorkloadSpec(
            users=3_000,
            celebrities=22,
            celebrity_factor=(1.3, 2.0),
            author_tiers=(10, 100, 299),
            authors_per_tier=1,
            readers_per_group=2,
            poster_pool=600,
            posts_per_poster=3,
            posts_per_celebrity=10,
            timeline_fill=100,
            timeline_id_pool=5_000,
            mean_followers=15.0,
        ),
        "threshold": 300,
        "timeline_owners": 2_000,
        "fanout_posts_per_author": 1,
        "ref_requests": 20_000,
        "reads_per_group": 10,
        "variant_reads": 3,
        "baseline_reads": 5,
        "mongo_baseline_reads": 1,
        "read_seconds": 5.0,
        "http_servers": lambda cpus: [(2, "reuse_port")],
        "http_connections": (8, 32),
        "http_seconds": 3,
        "http_warmup_seconds": 1,
        "coldstart_repeats": 1,
        "e2e_posts": {10: 2, 100: 2, 299: 1},
        "e2e_seconds": 30.0,
    },
}


_T0 = time.perf_counter()
_STDOUT = sys.stdout


def log(msg: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:6.1f}s] {msg}", file=_STDOUT, flush=True)


def machine() -> dict[str, Any]:
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(
                cmd, shell=True, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    mem_kb = sh("awk '/MemTotal/ {print $2}' /proc/meminfo")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": sh("awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo"),
        "memory_gib": round(int(mem_kb) / 1024 / 1024, 1) if mem_kb.isdigit() else None,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loadavg_at_start": sh("cat /proc/loadavg"),
        "redis_version": sh("redis-server --version"),
        "git_commit": sh(f"git -C {ROOT} rev-parse --short HEAD"),
    }


def memory_section(load: dict[str, Any]) -> dict[str, Any]:
    delta = load["used_memory_after"] - load["used_memory_before"]
    per_entry = delta / load["entries"]
    return {
        "what": "INFO memory used_memory delta over loading the home timelines through the "
        "timeline store (the timeline in its encoding, see sample_encoding, + its metadata + "
        "key overhead), divided by the entries",
        **{k: v for k, v in load.items() if k not in ("load_s", "entries_per_s")},
        "used_memory_delta": delta,
        "bytes_per_entry": round(per_entry, 2),
        "bytes_per_entry_timeline_only_sample": round(
            load["sample_memory_usage_bytes"] / load["entries_per_timeline"], 2
        ),
        "target_bytes_per_entry": 12.0,  # issue 11
    }


def events_for_coldstart(graph: workload.Graph, stores_: stores.Stores, token: Any) -> dict:
    reader = graph.uid(next(iter(graph.readers.values()))[0])
    tok = token(reader)
    job = {"kind": "fanout", "author_id": reader, "post_id": 1}  # unknown post: a no-op job
    return {
        "feed": lambda_events.http_event("GET", "/v1/feed", token=tok, query={"limit": 20}),
        "posts": lambda_events.http_event("GET", f"/v1/users/{reader}/posts", token=tok),
        "social": lambda_events.http_event("GET", "/v1/users/me", token=tok),
        "fanout": lambda_events.sqs_event([json.dumps(job)]),
    }


def strip_samples(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_samples(v) for k, v in obj.items() if not k.startswith("_")}
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--users", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--only", help="comma list of: fanout,feed,http,coldstart,e2e")
    parser.add_argument("--out", type=Path, help="JSON output file")
    parser.add_argument("--img-dir", type=Path, help="where the PNG plots go")
    args = parser.parse_args(argv)
    cfg = MODES[args.mode]
    spec = cfg["spec"]
    if args.users:
        spec = dataclasses.replace(spec, users=args.users)
    if args.seed is not None:
        spec = dataclasses.replace(spec, seed=args.seed)
    only = set((args.only or "fanout,feed,http,coldstart,e2e").split(","))
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir = ROOT / "bench" / "results"
    out = args.out or results_dir / f"run-{stamp}-{args.mode}.json"
    img_dir = args.img_dir or (ROOT / "docs" / "img" if args.mode == "full" else out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="feed-bench-"))

    overrides = {"celebrity_threshold": cfg["threshold"]} if cfg["threshold"] else {}
    settings = stores.bench_settings(args.mode, **overrides)
    # The functions loaded in-process read their settings from the environment, like Lambda.
    os.environ.update(stores.settings_env(settings))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.aws_region)
    result: dict[str, Any] = {
        "mode": args.mode,
        "started_at": stamp,
        "machine": machine(),
        "stores": {
            "postgres": f"{settings.postgres_host}:{settings.postgres_port}/{settings.postgres_db}",
            "redis": f"{settings.redis_host}:{settings.redis_port}/{settings.redis_db}",
            "mongodb": f"{settings.mongodb_url} db {settings.mongodb_db}",
            "aws_endpoint": settings.aws_endpoint_url,
        },
    }
    log(f"mode {args.mode}: generating {spec.users:,} users (seed {spec.seed})")
    t = time.perf_counter()
    graph = workload.generate(spec, settings.celebrity_threshold)
    gen_s = time.perf_counter() - t
    log(f"graph: {graph.edges:,} follow edges in {gen_s:.1f}s; loading the stores")
    st = stores.prepare(settings)
    try:
        loads: dict[str, Any] = {"generate_s": round(gen_s, 2)}
        loads["postgres"] = workload.load_postgres(graph, settings.postgres_dsn)
        log(f"postgres loaded: {loads['postgres']}")
        posts = workload.make_posts(graph)
        loads["mongodb"] = workload.load_mongo(posts, st.db)
        log(f"mongodb loaded: {loads['mongodb']}")
        loads["redis_author_lists"] = workload.load_author_lists(
            graph, posts, st.services.timelines
        )
        tl = workload.load_timelines(
            graph, st.redis, settings.timeline_max_len, cfg["timeline_owners"]
        )
        loads["redis_timelines"] = {k: tl[k] for k in ("timelines", "load_s", "entries_per_s")}
        log(f"redis loaded: {loads['redis_timelines']}")
        result["workload"] = {"graph": workload.summary(graph), "load": loads}
        result["memory"] = memory_section(tl)
        log(f"memory: {result['memory']['bytes_per_entry']} bytes/entry")

        # The handlers print EMF metrics and JSON logs to stdout (CloudWatch in Lambda): keep
        # them in a file, off the terminal.
        sys.stdout = open(work / "handlers.log", "w")  # noqa: SIM115
        log(f"handler output: {work / 'handlers.log'}")
        if "fanout" in only:
            log("fan-out throughput")
            result["fanout"] = fanout_rate.run(
                st, graph, cfg["fanout_posts_per_author"], cfg["ref_requests"]
            )
            log(
                f"fan-out: {result['fanout']['headline_inserts_per_s']:,}/s, ratio "
                f"{result['fanout']['ratio_vs_zadd_P32_c50']} to ZADD, "
                f"{result['fanout']['ratio_vs_lpush_P32_c50']} to LPUSH"
            )
        if "feed" in only:
            log("feed read latency")
            result["feed_read"] = feed_read.run(
                st,
                graph,
                reads_per_group=cfg["reads_per_group"],
                variant_reads=cfg["variant_reads"],
                baseline_reads=cfg["baseline_reads"],
                mongo_baseline_reads=cfg["mongo_baseline_reads"],
                max_seconds=cfg["read_seconds"],
                key_dir=work / "keys",
                fanout_authors=[graph.uid(a) for a in graph.tier_authors[max(graph.tier_authors)]],
            )
        if "http" in only:
            log("HTTP throughput through the dev server (wrk)")
            result["http"] = http_read.run(
                st,
                graph,
                servers=cfg["http_servers"](os.cpu_count() or 1),
                connections=cfg["http_connections"],
                seconds=cfg["http_seconds"],
                warmup_seconds=cfg["http_warmup_seconds"],
                key_dir=work / "keys",
                work_dir=work,
            )
            log(http_read.summary_line(result["http"]))
        if "coldstart" in only:
            log("cold start")
            pair = mint_token.ensure_keypair(work / "keys")
            token = lambda uid: mint_token.mint_token(  # noqa: E731
                workload.subject_of(uid), settings=settings, pair=pair
            )
            result["cold_start"] = cold_start.run(
                settings,
                repeats=cfg["coldstart_repeats"],
                jwt_key=pair.public_pem,
                events=events_for_coldstart(graph, st, token),
                work_dir=work,
            )
        if "e2e" in only:
            log("end-to-end lag through SQS")
            result["e2e_lag"] = e2e_lag.run(
                st,
                graph,
                posts_per_tier=cfg["e2e_posts"],
                queue_name=f"feed-bench-{args.mode}-fanout",
                max_seconds=cfg["e2e_seconds"],
            )
    finally:
        if sys.stdout is not _STDOUT:
            sys.stdout.close()
            sys.stdout = _STDOUT
        st.close()
    result["duration_s"] = round(time.perf_counter() - started, 1)
    result["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().strip()
    title = f"{args.mode} run {stamp}, {graph.edges:,} edges, {os.cpu_count()} CPUs"
    suffix = "" if args.mode == "full" else "-quick"
    for section, stem, draw in (
        (
            "feed_read",
            "bench-feed-latency",
            lambda r, p: plots.latency_plot(r["_samples_s"], p, title),
        ),
        ("fanout", "bench-fanout-rate", lambda r, p: plots.fanout_plot(r, p, title)),
        ("http", "bench-http-throughput", lambda r, p: plots.http_plot(r, p, title)),
        ("memory", "bench-redis-memory", lambda r, p: plots.memory_plot(r, p, title)),
        ("cold_start", "bench-coldstart", lambda r, p: plots.coldstart_plot(r, p, title)),
    ):
        if section in result and "skipped" not in result[section]:
            path = img_dir / f"{stem}{suffix}.png"
            draw(result[section], path)
            result[section]["plot"] = str(
                path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            )
    saved = strip_samples(result)
    out.write_text(json.dumps(saved, indent=1, default=str) + "\n")
    if args.mode == "full" and args.out is None:
        (results_dir / "full-latest.json").write_text(
            json.dumps(saved, indent=1, default=str) + "\n"
        )
    log(f"done in {result['duration_s']}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
