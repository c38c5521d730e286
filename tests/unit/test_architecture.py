"""The layer's shape, checked from its source: no import cycles; the domain imports no driver,
no web or Lambda library and none of the outer packages, and never reads the environment;
adapters know nothing of HTTP, Lambda or the composition root."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGES = ("newsfeed", "feed_adapters", "feed_wiring", "feed_lambda", "feed_api")
DRIVERS = ("psycopg", "psycopg_pool", "redis", "pymongo", "bson", "boto3", "botocore")
WEB_AND_LAMBDA = ("fastapi", "starlette", "pydantic", "mangum", "aws_lambda_powertools", "jwt")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # absolute dotted name as written (a module, or a name inside one)
    line: int
    type_checking_only: bool


def _package_root(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, package
    return Path(next(iter(spec.submodule_search_locations)))


def layer_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        root = _package_root(package)
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for inner in node.body:
                guarded |= {id(n) for n in ast.walk(inner)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, id(node) in guarded)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                yield Import(module, f"{prefix}.{alias.name}", node.lineno, id(node) in guarded)


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The layer module an import refers to (`a.b.name` -> `a.b` when `name` is not a module)."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


MODULES = layer_modules()
IMPORTS = [imp for module, path in MODULES.items() for imp in imports_of(module, path)]


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_walk_sees_the_whole_layer() -> None:
    assert {
        "newsfeed.feed.manager",
        "feed_adapters.redis.timeline_store",
        "feed_wiring.root",
    } <= set(MODULES)
    assert len(IMPORTS) > 100


@pytest.mark.parametrize("with_type_checking", [False, True], ids=["runtime", "typing"])
def test_no_import_cycles(with_type_checking: bool) -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        if imp.type_checking_only and not with_type_checking:
            continue
        target = _resolve(imp.target, MODULES)
        # A package's own __init__ importing its children is not a cycle through them.
        if target and target != imp.importer and not target.startswith(imp.importer + "."):
            graph[imp.importer].add(target)
    assert find_cycles(graph) == []


def _violations(importer_top: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{imp.importer}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if _top(imp.importer) == importer_top and _top(imp.target) in forbidden
    ]


def test_domain_imports_no_driver_web_lambda_or_outer_package() -> None:
    outer = ("feed_adapters", "feed_wiring", "feed_lambda", "feed_api")
    assert _violations("newsfeed", DRIVERS + WEB_AND_LAMBDA + outer) == []


def test_domain_never_reads_the_environment() -> None:
    found = []
    for module, path in MODULES.items():
        if _top(module) != "newsfeed":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                found.append(f"{module}:{node.lineno}")
    assert found == []


def test_adapters_know_nothing_of_http_lambda_or_the_wiring() -> None:
    assert (
        _violations("feed_adapters", (*WEB_AND_LAMBDA, "feed_wiring", "feed_lambda", "feed_api"))
        == []
    )


def test_http_layer_reaches_stores_only_through_the_domain() -> None:
    assert _violations("feed_api", (*DRIVERS, "feed_adapters")) == []


def test_the_checks_catch_what_they_guard() -> None:
    # The walk itself must see a forbidden import and a cycle when there is one.
    fake = Path(__file__).with_name("_fake_domain_module.py")
    fake.write_text("import redis\nfrom ..errors import NotFound\n")
    try:
        found = list(imports_of("newsfeed.fake.mod", fake))
    finally:
        fake.unlink()
    assert [i.target for i in found] == ["redis", "newsfeed.errors.NotFound"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_prometheus_client_stays_off_the_lambda_path() -> None:
    # Only the Prometheus adapter imports it, and nothing a function loads imports the adapter:
    # Lambda publishes EMF, and prometheus-client is not in the layer's requirements.
    importers = {imp.importer for imp in IMPORTS if _top(imp.target) == "prometheus_client"}
    assert importers == {"feed_adapters.prometheus.telemetry"}
    adapter = "feed_adapters.prometheus.telemetry"
    assert [f"{i.importer}:{i.line}" for i in IMPORTS if i.target.startswith(adapter)] == []
    functions = Path(__file__).resolve().parents[2] / "functions"
    for app in functions.glob("*/app.py"):
        found = [i.target for i in imports_of(f"functions.{app.parent.name}.app", app)]
        assert not [t for t in found if t.startswith(("prometheus_client", adapter))], app


def test_pillow_is_imported_only_by_the_image_adapter_and_lazily() -> None:
    # Pillow is in the media function's own requirements, not the layer's: only the image
    # adapter imports it, and only the composition root's media_processing (on the first
    # upload) imports that adapter, inside the function.
    importers = {imp.importer for imp in IMPORTS if _top(imp.target) == "PIL"}
    assert importers == {"feed_adapters.images.pillow_renderer"}
    adapter = "feed_adapters.images"
    users = [i for i in IMPORTS if i.target.startswith(adapter)]
    assert {i.importer for i in users} == {"feed_wiring.root"}
    root_path = MODULES["feed_wiring.root"]
    tree = ast.parse(root_path.read_text())
    top_level = {id(n) for n in tree.body}
    assert all(
        id(node) not in top_level
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(adapter)
    )
