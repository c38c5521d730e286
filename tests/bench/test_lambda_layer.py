"""The pure parts of the cold start from the sam build (bench/lambda_layer.py): the isolated
interpreter sees only the function folder, the layer and the standard library; the build is
found or its absence explained; copies carry no bytecode (or all of it, precompiled); the CPU
cap writes the quota the kernel reads. No store, no build folder and no real cgroup needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import lambda_layer
from bench.lambda_layer import Build


def fake_build(root: Path, digest: str = "0123456789abcdef", *, pyc: bool = False) -> Path:
    build = root / digest
    (build / "FeedCoreLayer" / "python" / "onlyinlayer").mkdir(parents=True)
    (build / "FeedCoreLayer" / "python" / "onlyinlayer" / "__init__.py").write_text("X = 1\n")
    (build / "FeedFunction").mkdir()
    (build / "FeedFunction" / "app.py").write_text("import onlyinlayer\nhandler = None\n")
    (build / "template.yaml").write_text("Resources: {}\n")
    if pyc:
        cache = build / "FeedCoreLayer" / "python" / "onlyinlayer" / "__pycache__"
        cache.mkdir()
        (cache / "__init__.cpython-311.pyc").write_bytes(b"\0")
    return build


def test_function_folder_is_the_templates_logical_id() -> None:
    assert lambda_layer.function_folder_id("feed") == "FeedFunction"
    assert lambda_layer.function_folder_id("fanout") == "FanoutFunction"


def test_isolated_env_has_lambdas_path_order_and_drops_the_callers_python_settings() -> None:
    base = {"PYTHONPATH": "/elsewhere", "PYTHONHOME": "/x", "VIRTUAL_ENV": "/v", "KEEP": "1"}
    env = lambda_layer.isolated_env(base, Path("/b/FeedFunction"), Path("/b/L"), traced=True)
    assert env["PYTHONPATH"] == os.pathsep.join(["/b/FeedFunction", "/b/L/python"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["LAMBDA_TASK_ROOT"] == "/b/FeedFunction"
    assert env["KEEP"] == "1"
    assert "PYTHONHOME" not in env and "VIRTUAL_ENV" not in env
    untraced = lambda_layer.isolated_env(
        {"LAMBDA_TASK_ROOT": "/t"}, Path("/f"), Path("/l"), traced=False
    )
    assert "LAMBDA_TASK_ROOT" not in untraced


def test_isolated_interpreter_sees_the_layer_but_not_the_venv(tmp_path: Path) -> None:
    pytest.importorskip("pytest")  # here, in the venv, pytest imports
    build = Build(fake_build(tmp_path), "0123456789abcdef", "0123456789abcdef")
    python = lambda_layer.base_python()
    env = lambda_layer.isolated_env(
        {"PATH": "/usr/bin:/bin"}, build.function("feed"), build.layer, traced=False
    )
    assert not lambda_layer.importable(python, env, "pytest")
    assert lambda_layer.importable(python, env, "onlyinlayer")
    assert lambda_layer.importable(python, env, "app")  # the function folder, then the layer
    assert lambda_layer.importable(python, env, "json")  # the standard library
    assert not list(build.path.rglob("*.pyc"))  # nothing written while importing


def test_find_build_prefers_the_current_sources_then_the_newest(tmp_path: Path) -> None:
    assert lambda_layer.find_build(tmp_path / "absent", "x")[0] is None
    empty, why = lambda_layer.find_build(tmp_path, "x")
    assert empty is None and "make up" in why
    old = fake_build(tmp_path, "aaaaaaaaaaaaaaaa")
    new = fake_build(tmp_path, "bbbbbbbbbbbbbbbb")
    os.utime(old, (1, 1))
    (tmp_path / "cccccccccccccccc.tmp123").mkdir()  # an unfinished build is never chosen
    exact, _ = lambda_layer.find_build(tmp_path, "aaaaaaaaaaaaaaaa")
    assert exact is not None and exact.path == old and exact.matches_sources
    newest, why = lambda_layer.find_build(tmp_path, "dddddddddddddddd")
    assert newest is not None and newest.path == new and not newest.matches_sources
    assert "not built" in why


def test_copies_strip_bytecode_and_precompile_writes_it(tmp_path: Path) -> None:
    src = fake_build(tmp_path / "builds", pyc=True)
    build = Build(src, src.name, src.name)
    assert lambda_layer.bytecode_in(build.layer)["pyc_files"] == 1
    copy = lambda_layer.copy_build(build, ("feed",), tmp_path / "copy")
    assert lambda_layer.bytecode_in(copy.layer) == {
        "py_files": 1,
        "pyc_files": 0,
        "pycache_dirs": 0,
    }
    lambda_layer.precompile(lambda_layer.base_python(), copy, ("feed",))
    assert lambda_layer.bytecode_in(copy.layer)["pyc_files"] == 1
    assert lambda_layer.bytecode_in(copy.function("feed"))["pyc_files"] == 1


def test_lambda_cpu_share_at_512_mb() -> None:
    assert lambda_layer.lambda_cpu_share(512) == pytest.approx(0.2894, abs=1e-4)
    assert lambda_layer.lambda_cpu_share(4096) == 1.0


def test_cpu_cap_writes_cgroup_v1_quota_and_removes_the_group(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text("-1")
    with lambda_layer.cpu_cap(0.29, period_us=20_000, cgroup_root=tmp_path) as (cap, notes):
        assert cap is not None and cap.kind.startswith("cgroup v1")
        assert (cap.path / "cpu.cfs_quota_us").read_text() == "5800"
        assert (cap.path / "cpu.cfs_period_us").read_text() == "20000"
        assert any("v2" in n for n in notes)  # no unified cpu controller here
        assert cap.describe()["cpu_share"] == 0.29


def test_cpu_cap_prefers_cgroup_v2_cpu_max(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    with lambda_layer.cpu_cap(0.5, period_us=100_000, cgroup_root=tmp_path) as (cap, _):
        assert cap is not None and cap.kind == "cgroup v2 cpu.max"
        assert (cap.path / "cpu.max").read_text() == "50000 100000"


def test_cpu_cap_says_what_it_tried_when_there_is_no_cgroup(tmp_path: Path) -> None:
    with lambda_layer.cpu_cap(0.29, cgroup_root=tmp_path) as (cap, notes):
        assert cap is None
        assert len(notes) == 2 and "v1" in notes[1]


def test_cold_start_section_says_when_there_is_no_build(tmp_path: Path) -> None:
    from bench import cold_start
    from feed_wiring.settings import Settings

    settings = Settings.from_env({})
    meta, per_fn = cold_start.from_sam_build(
        settings, repeats=1, jwt_key=tmp_path / "none.pem", builds_dir=tmp_path / "absent"
    )
    assert meta == {"available": False, "reason": meta["reason"]} and per_fn == {}
    assert "make up" in meta["reason"]
    fake_build(tmp_path / "builds")  # a layer and the feed function only
    meta, _ = cold_start.from_sam_build(
        settings, repeats=1, jwt_key=tmp_path / "none.pem", builds_dir=tmp_path / "builds"
    )
    assert not meta["available"] and "posts" in meta["reason"]
