"""Run a function the way Lambda loads it from the artifacts `sam build` produces.

`make up` (infra/deploy.py) builds the template into `<tools>/sam-builds/<sources digest>/`: one
folder per function (`FeedFunction/`: what Lambda unpacks into /var/task) and `FeedCoreLayer/
python/` (the layer's packages and dependencies: Lambda's /opt/python). This module finds that
build, says whether it ships bytecode, prepares temporary copies of it (without any `.pyc`, or
precompiled), builds the interpreter command and environment that see only those folders and
the standard library, and optionally runs the probe under a CPU cap like Lambda's share of a
vCPU at 512 MB.

Isolation: the probe runs on the base interpreter the project's .venv was made from (Lambda's
runtime is a plain CPython of the same minor version), with
- `-S`: no `site` module, so neither that interpreter's site-packages (which hold pytest, boto3,
  pydantic... on this machine) nor any `.pth` file is on the path; /opt/python is not a site
  folder on Lambda either, so `.pth` files in a layer are not processed there;
- `-s`: no user site-packages; `-P`: the probe script's own folder is not prepended;
- PYTHONPATH = function folder, then the layer's `python/` folder (Lambda's order), and no
  other PYTHON* variable from the caller.
Nothing in the real build folder is written: every run there has PYTHONDONTWRITEBYTECODE=1.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ISOLATION_FLAGS = ("-P", "-S", "-s")
LAYER_ID = "FeedCoreLayer"
# Lambda gives a function CPU in proportion to its memory: a full vCPU at 1,769 MB.
FULL_VCPU_MB = 1769
CGROUP_NAME = "feed-coldstart"


def function_folder_id(name: str) -> str:
    """The template's logical id for function `name`, which names its build folder."""
    return f"{name.capitalize()}Function"


def base_python() -> Path:
    """The interpreter the running venv was created from (same version, no venv packages)."""
    exe = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = Path(sys.base_prefix) / "bin" / exe
    if candidate.exists():
        return candidate
    return Path(getattr(sys, "_base_executable", sys.executable))


def isolated_command(python: Path, script: Path, args: list[str]) -> list[str]:
    return [str(python), *ISOLATION_FLAGS, str(script), *args]


def isolated_env(
    base: dict[str, str], function_dir: Path, layer_dir: Path, *, traced: bool
) -> dict[str, str]:
    """`base` (the function's configuration) with Lambda's import path for these folders.

    `layer_dir` is the layer's root (the folder holding `python/`). Every other PYTHON* variable
    of `base` is dropped; bytecode is never written (/opt and /var/task are read-only on
    Lambda, and the real build folder must stay as built).
    """
    env = {k: v for k, v in base.items() if not k.startswith("PYTHON")}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONPATH"] = os.pathsep.join([str(function_dir), str(layer_dir / "python")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if traced:
        env["LAMBDA_TASK_ROOT"] = str(function_dir)
    else:
        env.pop("LAMBDA_TASK_ROOT", None)
    return env


@dataclass(frozen=True)
class Build:
    path: Path
    digest: str
    current_digest: str

    @property
    def matches_sources(self) -> bool:
        return self.digest == self.current_digest

    @property
    def layer(self) -> Path:
        return self.path / LAYER_ID

    def function(self, name: str) -> Path:
        return self.path / function_folder_id(name)


def find_build(builds_dir: Path, current_digest: str) -> tuple[Build | None, str]:
    """The build of the current sources, else the newest one; (None, why) when there is none."""
    if not builds_dir.is_dir():
        return None, f"no sam build folder {builds_dir} (run `make up` once)"
    done = [
        p
        for p in builds_dir.iterdir()
        if p.is_dir() and len(p.name) == 16 and (p / "template.yaml").exists()
    ]
    if not done:
        return None, f"no finished sam build under {builds_dir} (run `make up` once)"
    exact = builds_dir / current_digest
    chosen = exact if exact in done else max(done, key=lambda p: p.stat().st_mtime)
    why = (
        "the build of the current sources"
        if chosen == exact
        else "the newest build; the current sources were not built yet (`make up` builds them)"
    )
    return Build(chosen, chosen.name, current_digest), why


def bytecode_in(root: Path) -> dict[str, int]:
    pyc = sum(1 for _ in root.rglob("*.pyc"))
    caches = sum(1 for p in root.rglob("__pycache__") if p.is_dir())
    sources = sum(1 for _ in root.rglob("*.py"))
    return {"py_files": sources, "pyc_files": pyc, "pycache_dirs": caches}


def copy_build(build: Build, names: tuple[str, ...], dest: Path) -> Build:
    """A copy of the layer and these functions' folders under `dest`, without any bytecode."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(build.layer, dest / LAYER_ID, ignore=ignore, symlinks=True)
    for name in names:
        shutil.copytree(build.function(name), dest / function_folder_id(name), ignore=ignore)
    return Build(dest, build.digest, build.current_digest)


def precompile(python: Path, build: Build, names: tuple[str, ...]) -> float:
    """Write `.pyc` for every module of the copy (what a layer that ships bytecode holds).

    `unchecked-hash` pycs, as a layer would best ship them: timestamp pycs record the source's
    mtime to the second, and a zip's DOS times keep it to two seconds, so after deployment some
    could look stale and be compiled again (and not written: /opt is read-only). Not verified
    on Lambda itself.
    """
    t0 = time.perf_counter()
    dirs = [str(build.layer), *(str(build.function(n)) for n in names)]
    mode = ["--invalidation-mode", "unchecked-hash"]
    subprocess.run(
        [str(python), "-S", "-s", "-m", "compileall", "-q", "-j", "0", *mode, *dirs],
        check=False,  # a test file of some package that does not compile must not stop it
        capture_output=True,
        timeout=600,
    )
    return time.perf_counter() - t0


def stdlib_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["stdlib"], paths["platstdlib"]})


# ---------------------------------------------------------------------------------------------
# CPU cap


def lambda_cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / FULL_VCPU_MB)


@dataclass(frozen=True)
class CpuCap:
    path: Path
    kind: str  # "cgroup v2 cpu.max" or "cgroup v1 cpu.cfs_quota_us"
    quota_us: int
    period_us: int

    def enter(self) -> None:
        """Move the calling process into the group (a `preexec_fn` for subprocess)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def describe(self) -> dict[str, object]:
        return {
            "mechanism": self.kind,
            "quota_us": self.quota_us,
            "period_us": self.period_us,
            "cpu_share": round(self.quota_us / self.period_us, 4),
        }


def _v2_root(cgroup_root: Path) -> Path | None:
    for root in (cgroup_root, cgroup_root / "unified"):
        controllers = root / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            return root
    return None


@contextlib.contextmanager
def cpu_cap(
    share: float, *, period_us: int = 20_000, cgroup_root: Path = Path("/sys/fs/cgroup")
) -> Iterator[tuple[CpuCap | None, list[str]]]:
    """A cgroup limited to `share` of one CPU: yields (cap or None, what was tried and seen).

    Tries cgroup v2 (`cpu.max`, where the cpu controller is on the unified hierarchy), then the
    v1 cpu controller (`cpu.cfs_quota_us`). The group is removed on exit.
    """
    quota = max(1000, round(share * period_us))
    notes: list[str] = []
    made: Path | None = None
    cap: CpuCap | None = None
    name = f"{CGROUP_NAME}-{os.getpid()}"
    try:
        v2 = _v2_root(cgroup_root)
        if v2 is None:
            notes.append(f"cgroup v2: no `cpu` in cgroup.controllers under {cgroup_root}")
        else:
            group = v2 / name
            try:
                group.mkdir()
                made = group
                (group / "cpu.max").write_text(f"{quota} {period_us}")
                cap = CpuCap(group, "cgroup v2 cpu.max", quota, period_us)
            except OSError as e:
                notes.append(f"cgroup v2 {group}: {e}")
                with contextlib.suppress(OSError):
                    group.rmdir()
                made = None
        v1 = cgroup_root / "cpu"
        if cap is None and (v1 / "cpu.cfs_quota_us").exists():
            group = v1 / name
            try:
                group.mkdir()
                made = group
                (group / "cpu.cfs_period_us").write_text(str(period_us))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
                cap = CpuCap(group, "cgroup v1 cpu.cfs_quota_us", quota, period_us)
            except OSError as e:
                notes.append(f"cgroup v1 {group}: {e}")
        elif cap is None:
            notes.append(f"cgroup v1: no {v1 / 'cpu.cfs_quota_us'}")
        yield cap, notes
    finally:
        if made is not None:
            for _ in range(50):  # the last probe may still be leaving the group (EBUSY)
                try:
                    made.rmdir()
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break
                    time.sleep(0.1)


def importable(python: Path, env: dict[str, str], module: str) -> bool:
    """Whether `module` imports in the interpreter `python` started isolated with `env`."""
    out = subprocess.run(
        [str(python), *ISOLATION_FLAGS, "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    return out.returncode == 0
