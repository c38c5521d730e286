"""3. Cold start: init time of each function in a fresh process (the handler module's import:
what Lambda's init phase runs), against a bare Python start, plus the first invocation (which
builds the store clients and imports the domain lazily).

Two environments:
- `lambda_traced`: what Lambda gives a function under the template's `Tracing: Active`
  (LAMBDA_TASK_ROOT set, POWERTOOLS_TRACE_DISABLED unset): Powertools' Tracer is on;
- `trace_disabled`: POWERTOOLS_TRACE_DISABLED=true (local runs, tests, tracing off).

The first invocation is measured with tracing disabled (outside Lambda there is no X-Ray facade
segment to attach to).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.stores import ROOT, settings_env
from feed_wiring.settings import Settings

PROBE = ROOT / "bench" / "coldstart_probe.py"
FUNCTIONS = ("feed", "posts", "social", "fanout")
API_FUNCTIONS = ("feed", "posts", "social")
TARGET_MS = {"api": 250.0, "fanout": 100.0}  # issue 11: init with tracing


def _env(name: str, settings: Settings, jwt_key: Path, traced: bool) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        # Lambda's import path: the code folder (LAMBDA_TASK_ROOT) first, then the layer
        # (/opt/python); the probe imports `app` from there.
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "functions" / name), str(ROOT / "layers" / "feed_core")]
        ),
        **settings_env(settings),
        "JWT_PUBLIC_KEY_FILE": str(jwt_key),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "POWERTOOLS_SERVICE_NAME": name,
        "POWERTOOLS_METRICS_NAMESPACE": "FeedPlatformBench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    if traced:
        env["LAMBDA_TASK_ROOT"] = str(ROOT / "functions" / name)
    else:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def _probe(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(PROBE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd="/",
    )
    wall = time.perf_counter() - t0
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith('{"function"')]
    return json.loads(lines[-1]), wall


def _bare(repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(
    settings: Settings,
    *,
    repeats: int,
    jwt_key: Path,
    events: dict[str, dict[str, Any]],
    work_dir: Path,
) -> dict[str, Any]:
    """`events[name]` is the event for the first invocation of function `name`."""
    bare = _bare(repeats)
    bare_ms = statistics.median(bare)
    result: dict[str, Any] = {
        "bare_python_ms": {"median": round(bare_ms, 1), "samples": [round(x, 1) for x in bare]},
        "python": sys.version.split()[0],
        "functions": {},
    }
    for name in FUNCTIONS:
        row: dict[str, Any] = {"kind": "api" if name in API_FUNCTIONS else "fanout"}
        event_file = work_dir / f"coldstart-{name}.json"
        event_file.write_text(json.dumps({"event": events[name]}))
        for label, traced in (("lambda_traced", True), ("trace_disabled", False)):
            inits, walls = [], []
            last: dict[str, Any] = {}
            firsts = []
            for _ in range(repeats):
                args = [name] if traced else [name, "--invoke", str(event_file)]
                last, wall = _probe(args, _env(name, settings, jwt_key, traced))
                inits.append(last["init_ms"])
                walls.append(wall * 1000)
                if "first_invoke_ms" in last:
                    firsts.append(last["first_invoke_ms"])
            row[label] = {
                "init_ms_median": round(statistics.median(inits), 1),
                "init_ms_min": round(min(inits), 1),
                "init_ms_max": round(max(inits), 1),
                "process_wall_ms_median": round(statistics.median(walls), 1),
                "process_minus_bare_ms": round(statistics.median(walls) - bare_ms, 1),
                "xray_imported": last.get("xray_imported"),
                "fastapi_imported": last.get("fastapi_imported"),
                "modules_loaded": last.get("modules_loaded"),
            }
            if firsts:
                row[label]["first_invoke_ms_median"] = round(statistics.median(firsts), 1)
                row[label]["first_invoke_status"] = last.get("first_invoke_status")
                row[label]["second_invoke_ms"] = last.get("second_invoke_ms")
        row["target_ms"] = TARGET_MS[row["kind"]]
        row["meets_target_lambda_traced"] = (
            row["lambda_traced"]["init_ms_median"] <= row["target_ms"]
        )
        result["functions"][name] = row
    result["what"] = (
        "init_ms: import of functions/<name>/app.py in a fresh interpreter (Lambda's init "
        "phase, excluding the runtime's own start); process_minus_bare_ms: whole process wall "
        "time minus `python -c pass`; first_invoke_ms: the first handler call (lazy domain "
        "import and store connections), tracing disabled"
    )
    return result
