"""The layer's two descriptions agree: `sam build` installs layers/feed_core/requirements.txt,
`make up` installs layers/feed_core/pyproject.toml; the same pins, and every top-level package of
the layer folder is in the distribution."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "feed_core"


def _pyproject(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def requirements_txt() -> list[str]:
    text = (LAYER / "requirements.txt").read_text()
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def test_layer_pyproject_pins_exactly_what_sam_build_installs():
    deps = _pyproject(LAYER / "pyproject.toml")["project"]["dependencies"]
    assert sorted(deps) == sorted(requirements_txt())


def test_root_project_does_not_pin_runtime_dependencies_of_its_own():
    # They come from the layer's distribution; a third list would drift.
    assert _pyproject(ROOT / "pyproject.toml")["project"]["dependencies"] == []


def test_every_top_level_package_of_the_layer_is_in_the_distribution():
    include = _pyproject(LAYER / "pyproject.toml")["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
    packages = sorted(p.parent.name for p in LAYER.glob("*/__init__.py"))
    assert {"newsfeed", "feed_api"} <= set(packages)
    missing = [p for p in packages if not any(fnmatch.fnmatchcase(p, pat) for pat in include)]
    assert missing == [], f"not matched by [tool.setuptools.packages.find] include: {missing}"


def test_redis_replies_are_parsed_by_hiredis() -> None:
    # The layer ships hiredis for the feed read's nested pipeline replies; redis-py silently
    # falls back to its Python parser when it is missing.
    from feed_adapters.redis.client import make_redis

    conn = make_redis("127.0.0.1", 1, 0).connection_pool.make_connection()  # not connected
    assert "Hiredis" in type(conn._parser).__name__, type(conn._parser)
