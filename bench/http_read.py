"""6. HTTP throughput of the home feed through the dev server: `GET /v1/feed?limit=20` with a
bearer token, at fixed concurrency, by `wrk` (Debian package; installed when missing, as
infra/devstack.py installs the monitoring packages).

The server is infra/devserver.py as its own process group (`--no-access-log`; this checkout's
code on PYTHONPATH), with the bench's settings as its environment (the run's stores and the graph
it loaded) and a key pair of the run's own as JWT_PUBLIC_KEY_FILE, in one of three shapes:
- `single`: one process;
- `uvicorn_workers`: `--workers N`, uvicorn's workers accepting on one shared socket (the worker
  awake first takes every waiting connection, so wrk's burst of keep-alive connections can land
  on one worker: see `server_cpu_s_per_process`);
- `reuse_port`: `--workers N --reuse-port`, N processes each on its own SO_REUSEPORT socket (the
  kernel spreads the connections over them by a hash of their addresses).
Both multi-process shapes listen on the dev server's own socket, which keeps TCP_NODELAY on the
accepted connections (infra/devserver.py, listen_socket; with uvicorn's own bind every read
waited ~40 ms for a delayed ACK).
Per server:

1. the server starts (ready once every worker has logged its start-up and /openapi.json answers);
2. every benchmark reader is read once through it (200 with a full page; builds the timeline of
   a reader no earlier section read);
3. an untimed wrk run at the highest concurrency warms every worker (each process has its own
   store clients, graph cache and token cache, so one read per reader warms only one worker);
4. one wrk run per concurrency level: 2 threads, a closed loop (a connection sends its next
   request when the answer arrives), each request with the next reader's token, over all the
   readers of every mix (bench/wrk_feed.lua).

Recorded per run: requests/s, latency p50/p90/p99/max (wrk's histogram: send to last byte),
non-2xx responses and socket errors (must be 0), requests/s per core (os.cpu_count(): the whole
machine, which the server, the stores and wrk share), the CPU seconds of the server's processes
(/proc utime + stime) and of wrk, requests per CPU second of the server, and how busy all cores
were (/proc/stat).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from importlib import metadata, util
from pathlib import Path
from typing import Any

from bench.stats import dist
from bench.stores import ROOT, Stores, settings_env
from bench.workload import Graph, subject_of
from feed_adapters.postgres.graph_store import make_pool
from infra import devstack, mint_token

LIMIT = 20
PATH = f"/v1/feed?limit={LIMIT}"
LUA = ROOT / "bench" / "wrk_feed.lua"
THREADS = 2
PORTS = range(18100, 18200)  # BENCH_HTTP_PORT overrides
STARTED = "Application startup complete."
# Server shape -> devserver flags besides --workers.
SHAPES = {"single": [], "uvicorn_workers": [], "reuse_port": ["--reuse-port"]}


def ensure_wrk() -> str | None:
    """wrk's path, installing the Debian package if missing; None if that is not possible."""
    if shutil.which("wrk") is None:
        with contextlib.suppress(SystemExit, OSError, subprocess.SubprocessError):
            devstack.ensure_bench_packages()
    return shutil.which("wrk")


def free_port() -> int:
    if os.environ.get("BENCH_HTTP_PORT"):
        return int(os.environ["BENCH_HTTP_PORT"])
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def _process_tree(pid: int) -> list[int]:
    out, i = [pid], 0
    while i < len(out):
        for task in Path(f"/proc/{out[i]}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                out += [int(c) for c in task.read_text().split()]
        i += 1
    return out


def _cpu_s(pids: Sequence[int]) -> dict[int, float]:
    """utime + stime of each live process, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick  # fields 14 and 15
    return out


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@contextlib.contextmanager
def dev_server(
    env: dict[str, str], workers: int, shape: str, port: int, log: Path
) -> Iterator[int]:
    """infra/devserver.py with `workers` processes of `shape` (SHAPES) in a process group of its
    own; yields its PID once every worker has started and /openapi.json answers; stops the
    group."""
    cmd = [sys.executable, str(ROOT / "infra" / "devserver.py"), "--port", str(port)]
    cmd += ["--workers", str(workers), "--no-access-log", *SHAPES[shape]]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"dev server exited {proc.returncode}: {log.read_text()[-2000:]}"
                )
            if log.read_text(errors="replace").count(STARTED) >= workers and _answers(port):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"dev server not ready: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def read_once(port: int, token: str) -> float:
    """One feed read through the server; seconds. Raises unless 200 with a full page."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}", headers={"Authorization": f"Bearer {token}"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.loads(r.read())
        status = r.status
    elapsed = time.perf_counter() - t0
    if status != 200 or len(body["items"]) != LIMIT:
        raise AssertionError((status, len(body.get("items", []))))
    return elapsed


def run_wrk(
    wrk: str, port: int, tokens_file: Path, connections: int, seconds: int
) -> dict[str, Any]:
    """One wrk run: its done() summary (bench/wrk_feed.lua) and wrk's own CPU seconds."""
    cmd = [wrk, "-t", str(THREADS), "-c", str(connections), "-d", f"{seconds}s"]
    cmd += ["--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}"]
    cmd += ["--", str(tokens_file), PATH, str(THREADS)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-1000:]} {out.stderr[-1000:]}")
    summary = json.loads(lines[-1])
    summary["wrk_cpu_s"] = round(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2
    )
    summary["command"] = " ".join([*cmd[:-3], tokens_file.name, *cmd[-2:]])
    return summary


def measure(
    wrk: str, server_pid: int, port: int, tokens_file: Path, connections: int, seconds: int
) -> dict[str, Any]:
    pids = _process_tree(server_pid)
    cpu0, ticks0 = _cpu_s(pids), _machine_ticks()
    s = run_wrk(wrk, port, tokens_file, connections, seconds)
    cpu1, ticks1 = _cpu_s(pids), _machine_ticks()
    per_process = sorted((round(cpu1[p] - cpu0[p], 2) for p in cpu1 if p in cpu0), reverse=True)
    server_cpu = sum(per_process)
    duration = s["duration_us"] / 1e6
    rps = s["requests"] / duration
    cores = os.cpu_count() or 1
    lat = s["latency_us"]
    return {
        "connections": connections,
        "threads": THREADS,
        "duration_s": round(duration, 2),
        "requests": s["requests"],
        "requests_per_s": round(rps, 1),
        "requests_per_s_per_core": round(rps / cores, 1),
        "latency_ms": {k: round(lat[k] / 1000, 3) for k in ("p50", "p90", "p99", "max", "mean")},
        "non2xx": s["non2xx"],
        "socket_errors": s["errors"],
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_s_per_process": [x for x in per_process if x > 0],
        "server_cores_busy": round(server_cpu / duration, 2),
        "requests_per_server_cpu_s": round(s["requests"] / server_cpu, 1) if server_cpu else None,
        "wrk_cpu_s": s["wrk_cpu_s"],
        "machine_cpu_busy": round((ticks1[0] - ticks0[0]) / max(1, ticks1[1] - ticks0[1]), 3),
        "command": s["command"],
    }


def _server_env(stores: Stores, public_pem: Path) -> dict[str, str]:
    path = [str(ROOT / "layers" / "feed_core"), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return {
        **os.environ,
        **settings_env(stores.settings),
        "JWT_PUBLIC_KEY_FILE": str(public_pem),
        "PYTHONPATH": os.pathsep.join(path),
        "PYTHONUNBUFFERED": "1",
    }


def _server_impl() -> dict[str, Any]:
    def version(dist_name: str) -> str | None:
        try:
            return metadata.version(dist_name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "program": "infra/devserver.py --workers N [--reuse-port] --no-access-log (uvicorn)",
        "shapes": {
            "single": "one process",
            "uvicorn_workers": "--workers N: uvicorn's workers accept on one shared socket",
            "reuse_port": "--workers N --reuse-port: N processes, each on its own SO_REUSEPORT "
            "socket",
        },
        "uvicorn": version("uvicorn"),
        "fastapi": version("fastapi"),
        "http": "httptools" if util.find_spec("httptools") else "h11",
        "loop": "uvloop" if util.find_spec("uvloop") else "asyncio",
        "blocking_calls": "anyio thread pool (the dev server; a Lambda process runs them inline)",
        "postgres_pool_max_per_worker": inspect.signature(make_pool).parameters["max_size"].default,
    }


def run(
    stores: Stores,
    graph: Graph,
    *,
    servers: Sequence[tuple[int, str]],
    connections: Sequence[int],
    seconds: int,
    warmup_seconds: int,
    key_dir: Path,
    work_dir: Path,
) -> dict[str, Any]:
    wrk = ensure_wrk()
    if wrk is None:
        return {"skipped": "wrk is not installed and could not be (apt-get needs root)"}
    probe = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    version = (probe.stdout + probe.stderr).strip()
    pair = mint_token.ensure_keypair(key_dir)
    uids = [graph.uid(r) for rs in graph.readers.values() for r in rs]
    tokens = [
        mint_token.mint_token(subject_of(u), settings=stores.settings, pair=pair, ttl_seconds=7200)
        for u in uids
    ]
    tokens_file = work_dir / "http-tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    env = _server_env(stores, pair.public_pem)
    port = free_port()
    started, runs = [], []
    for n, shape in servers:
        log = work_dir / f"devserver-{shape}-{n}.log"
        t0 = time.perf_counter()
        with dev_server(env, n, shape, port, log) as pid:
            start_s = time.perf_counter() - t0
            first = [read_once(port, tok) for tok in tokens]
            warm = run_wrk(wrk, port, tokens_file, max(connections), warmup_seconds)
            started.append(
                {
                    "workers": n,
                    "shape": shape,
                    "start_s": round(start_s, 2),
                    "first_read_per_reader": dist(first),
                    "warmup": {
                        "connections": max(connections),
                        "seconds": warmup_seconds,
                        "requests": warm["requests"],
                        "non2xx": warm["non2xx"],
                    },
                    "log": str(log),
                }
            )
            for c in connections:
                row = measure(wrk, pid, port, tokens_file, c, seconds)
                runs.append({"workers": n, "shape": shape, **row})
    return {
        "what": f"GET {PATH} with a bearer token through infra/devserver.py (its own "
        "processes, N workers: see server.shapes), by wrk at fixed concurrency (closed loop), "
        "rotating over every benchmark reader's token, after each reader's first read and a "
        "warm-up; per core: requests/s over os.cpu_count() (server, stores and wrk share the "
        "cores)",
        "tool": version.splitlines()[0] if version else wrk,
        "server": _server_impl(),
        "path": PATH,
        "readers": len(uids),
        "cores": os.cpu_count(),
        "seconds": seconds,
        "servers": started,
        "runs": runs,
        "all_2xx": all(r["non2xx"] == 0 and not any(r["socket_errors"].values()) for r in runs)
        and all(s["warmup"]["non2xx"] == 0 for s in started),
    }


def summary_line(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"http: skipped ({result['skipped']})"
    parts = [
        f"{r['shape']} {r['workers']}w c{r['connections']} {r['requests_per_s']:,.0f}/s "
        f"p99 {r['latency_ms']['p99']} ms"
        for r in result["runs"]
    ]
    return "http: " + "; ".join(parts) + ("" if result["all_2xx"] else " (NOT ALL 2xx)")
