"""PNG plots of a run: feed read latency distributions, fan-out rate by follower count, HTTP
throughput and p99 by concurrency, Redis bytes per timeline entry by encoding, cold start init by
function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import ScalarFormatter

from bench.feed_read import TARGETS


def _save(fig: Any, path: Path, title: str) -> None:
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def latency_plot(samples: dict[str, list[float]], path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, level in zip(axes, ("domain", "handler"), strict=True):
        for name, values in sorted(samples.items()):
            group, label = name.split("/")
            if label != level or not values:
                continue
            ms = np.sort(np.asarray(values) * 1000)
            ax.plot(ms, np.linspace(0, 1, len(ms)), label=group)
        # The latency targets judged at this level (issue 11: p99s at the handler, p50 domain).
        for _name, at, stat, _groups, bound, _kind in TARGETS:
            if at == level and stat.endswith("_ms"):
                ax.axvline(bound, color="grey", ls="--" if stat == "p99_ms" else ":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log)")
        ax.set_title(f"home feed read, {level}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of reads (CDF)")
    axes[1].legend(fontsize=8, loc="lower right")
    _save(fig, path, title)


def fanout_plot(fanout: dict[str, Any], path: Path, title: str) -> None:
    rows = fanout["per_post"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [r["followers"] for r in rows]
    ys = [r["inserts_per_s"] for r in rows]
    ax.scatter(xs, ys, label="one worker: inserts/s per post", s=18)
    for key, style in (("lpush_P32_c50", "-."), ("zadd_P32_c50", "--"), ("zadd_P32_c1", ":")):
        ref = fanout["reference"].get(key, {}).get("ops_per_s")
        if ref:
            ax.axhline(ref, ls=style, color="grey", label=f"redis-benchmark {key}: {ref:,.0f}/s")
            ax.axhline(ref / 2, ls=style, color="red", lw=0.7, label=f"target 0.5 x {key}")
    ax.set_xscale("log")
    ax.set_xlabel("followers of the author (log)")
    ax.set_ylabel("timeline inserts per second")
    ax.set_title("fan-out rate by follower count")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    _save(fig, path, title)


def http_plot(http: dict[str, Any], path: Path, title: str) -> None:
    """Reads/s and p99 by wrk concurrency, a line per server shape and worker count."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    lines: dict[str, list[dict[str, Any]]] = {}
    for r in http["runs"]:
        lines.setdefault(f"{r['shape']}, {r['workers']} worker(s)", []).append(r)
    for label, rows in lines.items():
        xs = [r["connections"] for r in rows]
        left.plot(xs, [r["requests_per_s"] for r in rows], marker="o", label=label)
        right.plot(xs, [r["latency_ms"]["p99"] for r in rows], marker="o", label=label)
    for ax, ylabel, what in (
        (left, "feed reads per second", "throughput"),
        (right, "p99 latency (ms)", "p99 latency"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["connections"] for r in http["runs"]}))
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
        ax.set_xlabel(f"wrk connections ({http['runs'][0]['threads']} threads)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"GET {http['path']} via the dev server: {what}")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    _save(fig, path, f"{title}; {http['cores']} cores shared by server, stores and wrk")


def memory_plot(memory: dict[str, Any], path: Path, title: str) -> None:
    """Bytes per timeline entry: one timeline's MEMORY USAGE in each encoding, and the load's
    used_memory delta per entry (metadata and key overhead included)."""
    enc = memory["by_encoding"]
    bars = [
        (f"{name}\n({enc[name]['encoding']})", enc[name]["bytes_per_entry"])
        for name in ("list", "zset_listpack", "zset_skiplist")
        if name in enc
    ]
    bars.append(("list, whole load\n(used_memory delta)", memory["bytes_per_entry"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rects = ax.bar([b[0] for b in bars], [b[1] for b in bars], color="tab:blue")
    ax.bar_label(rects, fmt="%.1f", fontsize=8)
    target = memory.get("target_bytes_per_entry")
    if target:
        ax.axhline(target, color="red", ls="--", lw=0.8, label=f"target {target:g} bytes")
        ax.legend(fontsize=7)
    ax.set_ylabel("bytes per entry")
    ax.set_title(f"Redis memory of a {enc['entries']}-entry home timeline")
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path, title)


def coldstart_plot(cold: dict[str, Any], path: Path, title: str) -> None:
    """Median init by function, traced and untraced: from the project's .venv, and from the sam
    build in each variant the JSON has (as built, without .pyc, precompiled; not the CPU-capped
    ones, several times longer)."""
    functions = cold["functions"]
    names = list(functions)
    ships_pyc = cold.get("from_sam_build", {}).get("ships_pyc")
    labels = {
        "venv": ".venv",
        "as_built": f"sam build as built ({'.pyc' if ships_pyc else 'no .pyc'})",
        "no_pyc": "sam build without .pyc",
        "precompiled": "sam build precompiled",
    }

    def init(fn: dict[str, Any], variant: str, mode: str) -> float | None:
        build = fn.get("from_sam_build", {}).get("variants", {})
        row = fn if variant == "venv" else build.get(variant, {})
        return row.get(mode, {}).get("init_ms_median")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, mode in zip(axes, ("lambda_traced", "trace_disabled"), strict=True):
        variants = [v for v in labels if any(init(functions[n], v, mode) for n in names)]
        width = 0.8 / max(1, len(variants))
        for i, v in enumerate(variants):
            xs = np.arange(len(names)) + (i - (len(variants) - 1) / 2) * width
            ys = [init(functions[n], v, mode) or 0 for n in names]
            ax.bar(xs, ys, width, label=labels[v])
        if mode == "lambda_traced":
            for j, n in enumerate(names):
                target = functions[n].get("target_ms")
                if target:
                    ax.hlines(target, j - 0.45, j + 0.45, color="black", ls="--", lw=1)
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_title(f"cold start init, {mode.replace('_', ' ')} (median)")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("init (ms); dashes: the traced target")
    axes[1].legend(fontsize=7)
    _save(fig, path, title)
