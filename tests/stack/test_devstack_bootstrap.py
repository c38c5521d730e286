"""infra/devstack.py starts under the system python3, before .venv exists: there it imports the
standard library only, then runs itself again under .venv/bin/python (no sys.path edits); `down`
and `clean` without a .venv do their job without building one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import devstack

ROOT = Path(__file__).resolve().parents[2]
DEVSTACK = ROOT / "infra" / "devstack.py"
# Ports nothing listens on: a status of this stack shows every service stopped.
UNUSED = {
    "POSTGRES_PORT": "25439",
    "REDIS_PORT": "26389",
    "MONGODB_URL": "mongodb://127.0.0.1:27039/",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:24569",
    "FEED_API_PORT": "28009",
}
in_project_venv = pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
    reason="the bootstrap re-runs under this checkout's .venv: run from it (make test)",
)


def system_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter .venv was made from
    return subprocess.run(
        [base, str(DEVSTACK), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@in_project_venv
def test_status_under_the_system_python_runs_again_under_the_venv(tmp_path: Path) -> None:
    env = {**os.environ, **UNUSED, "FEED_STATE_DIR": str(tmp_path / "state")}
    env.pop(devstack.BOOTSTRAPPED, None)
    out = system_python(["status"], env)
    # Printing the settings needs newsfeed, which only .venv has; 3 = something is stopped.
    assert out.returncode == 3, out.stdout + out.stderr
    assert "127.0.0.1:25439" in out.stdout and "stopped" in out.stdout


@in_project_venv
def test_a_second_bootstrap_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, **UNUSED, "FEED_STATE_DIR": str(tmp_path / "state")}
    env[devstack.BOOTSTRAPPED] = "1"  # as if .venv/bin/python had not run inside .venv
    out = system_python(["status"], env)
    assert out.returncode != 0 and "does not run inside" in out.stderr, out.stdout + out.stderr


def test_clean_without_a_venv_stops_by_pid_file_and_deletes_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    (state / "run").mkdir(parents=True)
    monkeypatch.setenv("FEED_STATE_DIR", str(state))
    monkeypatch.setattr(devstack, "in_project_venv", lambda: False)
    monkeypatch.setattr(devstack, "VENV_PYTHON", tmp_path / "no-venv" / "bin" / "python")

    def no_bootstrap(argv: list[str]) -> None:
        raise AssertionError("clean without a .venv must not build one")

    monkeypatch.setattr(devstack, "bootstrap", no_bootstrap)
    server = subprocess.Popen(["sleep", "60"], start_new_session=True)  # stands in for redis
    try:
        (state / "run" / "redis.pid").write_text(f"{server.pid}\n")
        assert devstack.main(["clean"]) == 0
        assert not devstack.pid_alive(server.pid)
        assert not state.exists()
    finally:
        server.kill()
        server.wait()
