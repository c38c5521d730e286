"""The build that gets deployed carries bytecode: `sam build` ships sources only, and Lambda's
/opt is read-only, so a layer without .pyc compiles every module it imports at every cold
start (bench/cold_start.py `from_sam_build`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra import deploy


def fake_build(root: Path) -> Path:
    (root / "FeedCoreLayer" / "python" / "pkg").mkdir(parents=True)
    (root / "FeedCoreLayer" / "python" / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    (root / "FeedFunction").mkdir()
    (root / "FeedFunction" / "app.py").write_text("from pkg import VALUE\n")
    return root


def test_compile_bytecode_writes_unchecked_hash_pyc_for_every_module(tmp_path: Path) -> None:
    build = fake_build(tmp_path)
    assert deploy.compile_bytecode(build) == 2
    for pyc in build.rglob("*.pyc"):
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, pyc  # hash-based, not checked against the source
    # Used as they are: a read-only import with writes off finds them.
    layer = build / "FeedCoreLayer" / "python"
    out = subprocess.run(
        [sys.executable, "-B", "-c", "import pkg, sys; print(pkg.__cached__)"],
        env={"PYTHONPATH": str(layer)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).exists()


def test_a_change_to_the_build_recipe_is_a_new_build() -> None:
    before = deploy.sources_digest()
    original = deploy.BUILD_RECIPE
    try:
        deploy.BUILD_RECIPE = original + "-changed"
        assert deploy.sources_digest() != before
    finally:
        deploy.BUILD_RECIPE = original
