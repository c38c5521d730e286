"""3. Cold start: init time of each function in a fresh process (the handler module's import:
what Lambda's init phase runs), against a bare Python start, plus the first invocation (which
builds the store clients and imports the domain lazily).

Two environments:
- `lambda_traced`: what Lambda gives a function under the template's `Tracing: Active`
  (LAMBDA_TASK_ROOT set, POWERTOOLS_TRACE_DISABLED unset): Powertools' Tracer is on;
- `trace_disabled`: POWERTOOLS_TRACE_DISABLED=true (local runs, tests, tracing off).

The first invocation is measured with tracing disabled (outside Lambda there is no X-Ray facade
segment to attach to).

Those run on the project's .venv (its site-packages, bytecode written by earlier runs). The
`from_sam_build` part loads each function from what `sam build` produced instead (see
bench/lambda_layer.py): the base interpreter isolated from every site-packages, the function's
build folder and the layer's `python/` folder on PYTHONPATH, no bytecode written, in variants:
- `as_built`: the build folder as `sam build` left it (it ships no `.pyc`: Lambda's /opt and
  /var/task are read-only, so such a layer compiles every module it imports on every cold start);
- `no_pyc`: a copy without any `.pyc` (measured only when the build ships some);
- `precompiled`: a copy after `python -m compileall` (a layer that ships its bytecode, as
  unchecked-hash pycs: zip keeps mtimes to 2 s, so timestamp pycs could look stale on Lambda);
- `..._cpu_capped`: the same under a cgroup CPU quota of Lambda's share of a vCPU at the
  template's 512 MB (512/1769), when the machine lets the bench create one; traced only.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import lambda_layer
from bench.stores import ROOT, settings_env
from feed_wiring.settings import Settings
from infra import deploy

PROBE = ROOT / "bench" / "coldstart_probe.py"
FUNCTIONS = ("feed", "posts", "social", "fanout")
API_FUNCTIONS = ("feed", "posts", "social")
TARGET_MS = {"api": 250.0, "fanout": 100.0}  # issue 11: init with tracing
MEMORY_MB = 512  # the template's Globals MemorySize


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


def _probe(
    args: list[str],
    env: dict[str, str],
    *,
    command: list[str] | None = None,
    preexec: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [*(command or [sys.executable, str(PROBE)]), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd="/",
        preexec_fn=preexec,
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


def _stats(samples: list[float]) -> dict[str, Any]:
    return {
        "init_ms_median": round(statistics.median(samples), 1),
        "init_ms_min": round(min(samples), 1),
        "init_ms_max": round(max(samples), 1),
        "n": len(samples),
    }


def from_sam_build(
    settings: Settings,
    *,
    repeats: int,
    jwt_key: Path,
    builds_dir: Path | None = None,
    cap_repeats: int | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(what was measured and how, per function: its variants) from the `sam build` folder.

    The CPU-capped variants run `cap_repeats` times (default: up to 3, none when `repeats` is
    below 3, as in the quick mode, where they would add about 35 s for numbers that mean
    nothing); each capped sample of the as-built layer takes about 6 s here.
    """
    if cap_repeats is None:
        cap_repeats = min(repeats, 3) if repeats >= 3 else 0
    cap = cap_repeats > 0
    builds_dir = builds_dir or deploy.TOOLS_DIR / "sam-builds"
    build, why = lambda_layer.find_build(builds_dir, deploy.sources_digest())
    if build is None:
        return {"available": False, "reason": why}, {}
    missing = [n for n in FUNCTIONS if not (build.function(n) / "app.py").exists()]
    if missing or not build.layer.is_dir():
        reason = f"build {build.path} lacks {', '.join(missing) or 'the layer'}"
        return {"available": False, "reason": reason}, {}
    python = lambda_layer.base_python()
    layer_bytecode = lambda_layer.bytecode_in(build.layer)
    fn_bytecode = {n: lambda_layer.bytecode_in(build.function(n)) for n in FUNCTIONS}
    ships_pyc = layer_bytecode["pyc_files"] > 0 or any(b["pyc_files"] for b in fn_bytecode.values())
    meta: dict[str, Any] = {
        "available": True,
        "build": str(build.path),
        "build_digest": build.digest,
        "current_sources_digest": build.current_digest,
        "matches_current_sources": build.matches_sources,
        "chosen": why,
        "ships_pyc": ships_pyc,
        "layer_bytecode": layer_bytecode,
        "interpreter": f"{python} {' '.join(lambda_layer.ISOLATION_FLAGS)}",
        "memory_mb": MEMORY_MB,
    }

    def env_for(b: lambda_layer.Build, name: str, traced: bool) -> dict[str, str]:
        base = _env(name, settings, jwt_key, traced)
        return lambda_layer.isolated_env(base, b.function(name), b.layer, traced=traced)

    iso_env = env_for(build, "feed", False)
    meta["isolation"] = {
        "venv_only_module": "pytest",
        "venv_only_module_importable": lambda_layer.importable(python, iso_env, "pytest"),
        "layer_module_importable": lambda_layer.importable(python, iso_env, "fastapi"),
    }
    command = lambda_layer.isolated_command(python, PROBE, [])
    with tempfile.TemporaryDirectory(prefix="feed-coldstart-build-") as tmp:
        variants: dict[str, lambda_layer.Build] = {"as_built": build}
        meta["variants"] = {
            "as_built": "the build folder as sam build left it, read in place, nothing written"
        }
        if ships_pyc:
            variants["no_pyc"] = lambda_layer.copy_build(build, FUNCTIONS, Path(tmp) / "nopyc")
            meta["variants"]["no_pyc"] = "a copy without any .pyc, nothing written"
        else:
            meta["variants"]["no_pyc"] = "same as as_built: the build ships no .pyc"
        pre = lambda_layer.copy_build(build, FUNCTIONS, Path(tmp) / "precompiled")
        meta["precompile_s"] = round(lambda_layer.precompile(python, pre, FUNCTIONS), 1)
        meta["precompiled_layer_bytecode"] = lambda_layer.bytecode_in(pre.layer)
        variants["precompiled"] = pre
        meta["variants"]["precompiled"] = (
            "a copy after python -m compileall --invalidation-mode unchecked-hash"
        )
        share = lambda_layer.lambda_cpu_share(MEMORY_MB)
        capper = lambda_layer.cpu_cap(share) if cap else contextlib.nullcontext((None, []))
        with capper as (cpu, notes):
            meta["cpu_cap"] = {
                "wanted_share": round(share, 4),
                "available": cpu is not None,
                **(cpu.describe() if cpu else {}),
                "tried": notes if cap else [f"skipped: {repeats} repeat(s), capped needs 3"],
                "repeats": cap_repeats if cpu is not None else 0,
            }
            plan: list[tuple[str, lambda_layer.Build, bool, Any, int]] = []
            for vname, b in variants.items():
                plan += [(vname, b, True, None, repeats), (vname, b, False, None, repeats)]
            if cpu is not None:
                for vname in ("as_built", "precompiled"):
                    v = variants[vname]
                    plan.append((f"{vname}_cpu_capped", v, True, cpu.enter, cap_repeats))
            samples: dict[tuple[str, str, str], list[float]] = {}
            extra: dict[tuple[str, str, str], dict[str, Any]] = {}
            errors: dict[str, str] = {}
            for rep in range(repeats):  # interleaved, so drift in the machine's load is shared
                for name in FUNCTIONS:
                    for vname, b, traced, preexec, times in plan:
                        key = (name, vname, "lambda_traced" if traced else "trace_disabled")
                        if rep >= times or f"{name}/{vname}" in errors:
                            continue
                        try:
                            out, wall = _probe(
                                [name], env_for(b, name, traced), command=command, preexec=preexec
                            )
                        except subprocess.SubprocessError as e:
                            tail = getattr(e, "stderr", "") or str(e)
                            errors[f"{name}/{vname}"] = tail.strip().splitlines()[-1][:300]
                            continue
                        samples.setdefault(key, []).append(out["init_ms"])
                        extra.setdefault(key, {}).setdefault("walls", []).append(wall * 1000)
                        extra[key]["last"] = out
    if errors:
        meta["errors"] = errors
    meta["build_untouched"] = lambda_layer.bytecode_in(build.layer) == layer_bytecode
    per_fn: dict[str, dict[str, Any]] = {}
    for (name, vname, mode), xs in samples.items():
        last = extra[(name, vname, mode)]["last"]
        row = {
            **_stats(xs),
            "process_wall_ms_median": round(
                statistics.median(extra[(name, vname, mode)]["walls"]), 1
            ),
            "modules_loaded": last.get("modules_loaded"),
            "foreign_modules": last.get("foreign_modules"),
            "xray_imported": last.get("xray_imported"),
        }
        fn = per_fn.setdefault(name, {"ships_pyc": ships_pyc, "variants": {}})
        fn["variants"].setdefault(vname, {})[mode] = row
    meta["all_modules_from_layer_or_stdlib"] = all(
        row.get("foreign_modules") == 0
        for fn in per_fn.values()
        for modes in fn["variants"].values()
        for row in modes.values()
    )
    return meta, per_fn


def run(
    settings: Settings,
    *,
    repeats: int,
    jwt_key: Path,
    events: dict[str, dict[str, Any]],
    work_dir: Path,
    sam_build: bool = True,
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
    if sam_build:
        meta, per_fn = from_sam_build(settings, repeats=repeats, jwt_key=jwt_key)
        result["from_sam_build"] = meta
        for name, variants in per_fn.items():
            result["functions"][name]["from_sam_build"] = variants
    result["what"] = (
        "init_ms: import of functions/<name>/app.py in a fresh interpreter (Lambda's init "
        "phase, excluding the runtime's own start); process_minus_bare_ms: whole process wall "
        "time minus `python -c pass`; first_invoke_ms: the first handler call (lazy domain "
        "import and store connections), tracing disabled; from_sam_build: the same init "
        "loaded from the sam build folder on the isolated base interpreter "
        "(bench/lambda_layer.py), per variant and tracing mode"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Only the `from_sam_build` part, without the stores (the other part's first invocation
    needs them): `python -m bench.cold_start --repeats 5`."""
    import argparse

    from infra import mint_token

    parser = argparse.ArgumentParser(description="cold start from the sam build folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cap-repeats", type=int, help="CPU-capped samples (0: none)")
    parser.add_argument("--builds-dir", type=Path, help="default: the tools folder's sam-builds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="feed-coldstart-key-") as keys:
        pair = mint_token.ensure_keypair(Path(keys))  # a throwaway key: init only reads it
        meta, per_fn = from_sam_build(
            Settings.from_env(os.environ),
            repeats=args.repeats,
            jwt_key=pair.public_pem,
            builds_dir=args.builds_dir,
            cap_repeats=args.cap_repeats,
        )
    print(json.dumps({"from_sam_build": meta, "functions": per_fn}, indent=2))
    return 0 if meta.get("available") and not meta.get("errors") else 1


if __name__ == "__main__":
    raise SystemExit(main())
