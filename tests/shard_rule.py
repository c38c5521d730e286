"""The shard-readiness rule of the graph adapter, checked on every statement the suite runs.

A pytest plugin (tests/conftest.py loads it): for the whole session, every psycopg cursor call
whose caller is in `feed_adapters.postgres` is recorded as (normalised text, parameters, call
site). Calls from anywhere else (migrations in infra/, fixtures that TRUNCATE, the bench
loader, tests writing rows behind the store's back) are not the adapter's and are left out, by
the module that made the call, not by the text. At the end of the session each recorded
statement must be on one of the lists in feed_adapters/postgres/sharding.py, and a single-shard
one must pass `static_problems` (its text ties each declared shard key column to its
parameter) and `run_problems` (each execution's key parameters carry one user id). A failure
is reported as an error in the teardown of the session's last test.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from feed_adapters.postgres import sharding
from feed_adapters.postgres.sharding import SHARD_KEYS, SingleShard, normalise

ADAPTER_PACKAGE = "feed_adapters.postgres"

_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s|%s")
# A relation after FROM, JOIN, INTO or UPDATE (not a row lock's or an upsert's UPDATE), unless it
# is a function call.
_TABLE = re.compile(
    r"(?:\b(?:FROM|JOIN|INTO)|(?<!\bFOR\s)(?<!\bKEY\s)(?<!\bDO\s)\bUPDATE)\s+(\w+)\b(?!\()",
    re.IGNORECASE,
)
_CTE = re.compile(r"(?:\bWITH|,)\s*(\w+)\s+AS\s*\(", re.IGNORECASE)
_INSERT = re.compile(r"^INSERT INTO (\w+) \(([^)]*)\) VALUES \(([^)]*)\)", re.IGNORECASE)


@dataclass(frozen=True)
class Call:
    sql: str  # normalised
    params: Any
    site: str  # file:line in function


class Report:
    """What a stream of calls shows against the registry: each statement counted once, by its
    first call (unregistered) or its first failing call (broken)."""

    def __init__(self) -> None:
        self.entries = registry()
        self.unregistered: dict[str, Call] = {}
        self.broken: dict[str, str] = {}  # sql -> what is wrong, and where
        self._static: dict[str, list[str]] = {}

    def append(self, call: Call) -> None:
        entry = self.entries.get(call.sql)
        if entry is None:
            self.unregistered.setdefault(call.sql, call)
        elif isinstance(entry, SingleShard) and call.sql not in self.broken:
            static = self._static.get(call.sql)
            if static is None:
                static = self._static[call.sql] = static_problems(entry)
            problems = static or run_problems(entry, call.params)
            if problems:
                self.broken[call.sql] = f"{'; '.join(problems)} (from {call.site})"

    def __bool__(self) -> bool:
        return bool(self.unregistered or self.broken)

    def __str__(self) -> str:
        lines = []
        for sql, call in self.unregistered.items():
            lines.append(
                f"unregistered statement from {call.site}:\n    {sql}\n  add it to"
                " feed_adapters/postgres/sharding.py: SINGLE_SHARD with its keys, or"
                " CROSS_SHARD with why"
            )
        for sql, problem in self.broken.items():
            lines.append(f"{problem}:\n    {sql}")
        return "\n".join(lines)


def registry() -> dict[str, SingleShard | sharding.CrossShard]:
    entries: dict[str, SingleShard | sharding.CrossShard] = {}
    for entry in (*sharding.SINGLE_SHARD, *sharding.CROSS_SHARD):
        if entry.sql in entries:
            raise AssertionError(f"registered twice: {entry.sql}")
        entries[entry.sql] = entry
    return entries


def tables_of(sql: str) -> set[str]:
    """Relations the statement names (FROM, JOIN, INTO, UPDATE), without its CTEs' names."""
    return {t.lower() for t in _TABLE.findall(sql)} - {c.lower() for c in _CTE.findall(sql)}


def _placeholders(sql: str) -> list[tuple[int | str, int]]:
    """(parameter, offset) of each placeholder in order; positional ones numbered from 0."""
    out: list[tuple[int | str, int]] = []
    position = 0
    for m in _PLACEHOLDER.finditer(sql):
        if m.group(0) == "%%":
            continue
        if m.group(1):
            out.append((m.group(1), m.start()))
        else:
            out.append((position, m.start()))
            position += 1
    return out


def _ties(sql: str, key: sharding.Key) -> bool:
    """The text compares `key.column` with the key's parameter: `column = %s`, `column =
    ANY(%s)`, or the column's place in an INSERT's column list."""
    offsets = [at for param, at in _placeholders(sql) if param == key.param]
    compared = re.compile(rf"(?<![\w.]){re.escape(key.column)}\s*=\s*(?:ANY\s*\(\s*)?$", re.I)
    if any(compared.search(sql[:at]) for at in offsets):
        return True
    insert = _INSERT.match(sql)
    if insert and insert.group(1).lower() == key.table:
        columns = [c.strip() for c in insert.group(2).split(",")]
        values = [v.strip() for v in insert.group(3).split(",")]
        if key.column in columns and len(values) == len(columns):
            value = values[columns.index(key.column)]
            return any(at == sql.index(value, insert.start(3)) for at in offsets)
    return False


def static_problems(entry: SingleShard) -> list[str]:
    """What the text of a single-shard entry does not show: an unknown table, a sharded table
    without a key, a key that is no shard key of its table or that the text does not compare
    with its parameter."""
    problems = []
    named = tables_of(entry.sql)
    for table in sorted(named - set(SHARD_KEYS) - sharding.REFERENCE_TABLES):
        problems.append(f"table {table} is neither sharded nor a reference table")
    for table in sorted(named & set(SHARD_KEYS)):
        if not any(k.table == table for k in entry.keys):
            problems.append(f"{table} is read without its shard key")
    for key in entry.keys:
        if key.table not in named:
            problems.append(f"key {key} names a table the statement does not")
        if key.column.rsplit(".", 1)[-1] not in SHARD_KEYS.get(key.table, ()):
            problems.append(f"{key.column} is not a shard key of {key.table}")
        elif not _ties(entry.sql, key):
            problems.append(f"{key.column} is not compared with parameter {key.param!r}")
    return problems


def run_problems(entry: SingleShard, params: Any) -> list[str]:
    """An execution's key parameters must hold one user id between them (an array counts by
    its distinct members): then the statement runs on that user's shard. No keys: the statement
    names no sharded table (static_problems says so), and runs on any one node."""
    if not entry.keys:
        return []
    users: set[Any] = set()
    for key in entry.keys:
        try:
            value = params[key.param]
        except (KeyError, IndexError, TypeError):
            return [f"no parameter {key.param!r} for {key.column}"]
        values = value if isinstance(value, list | tuple) else [value]
        if not values or any(not isinstance(v, int) or isinstance(v, bool) for v in values):
            return [f"{key.column} got {value!r}, not a user id"]
        users.update(values)
    if len(users) != 1:
        return [f"its shard keys carry {len(users)} users in one execution: {sorted(users)}"]
    return []


def check(calls: Iterable[Call]) -> Report:
    report = Report()
    for call in calls:
        report.append(call)
    return report


# -- capture ----------------------------------------------------------------------------------


class StatementLog:
    """Patches psycopg's (sync) cursor methods to record the adapter's statements. Sinks
    (anything with `append`) receive every adapter call while attached; `capture()` attaches a
    list for a block."""

    METHODS = ("execute", "executemany", "stream", "copy")

    def __init__(self) -> None:
        self.sinks: list[Any] = []  # anything with append(Call)
        self._saved: list[tuple[type, str, Callable[..., Any]]] = []
        self._inside = threading.local()

    def install(self) -> None:
        targets = [(psycopg.Cursor, m) for m in self.METHODS]
        targets.append((psycopg.ServerCursor, "execute"))
        for cls, name in targets:
            original = cls.__dict__.get(name)
            if original is None:
                continue
            self._saved.append((cls, name, original))
            setattr(cls, name, self._wrap(original, many=name == "executemany"))

    def uninstall(self) -> None:
        for cls, name, original in reversed(self._saved):
            setattr(cls, name, original)
        self._saved.clear()

    @contextmanager
    def capture(self, *, alone: bool = False) -> Iterator[list[Call]]:
        """The adapter's calls during the block. `alone`: only here, not in the session's
        check (for a test that sends a statement breaking the rule on purpose)."""
        sink: list[Call] = []
        saved = self.sinks
        self.sinks = [sink] if alone else [*saved, sink]
        try:
            yield sink
        finally:
            self.sinks = saved

    def _wrap(self, original: Callable[..., Any], *, many: bool) -> Callable[..., Any]:
        log = self

        def recording(cur: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            if log.sinks and not getattr(log._inside, "on", False):
                site = _adapter_site()
                if site is not None:
                    text = normalise(_text(query, cur))
                    for p in params if many else [params]:
                        call = Call(text, p, site)
                        for sink in log.sinks:
                            sink.append(call)
            log._inside.on = True  # a cursor method calling another is one statement
            try:
                return original(cur, query, params, *args, **kwargs)
            finally:
                log._inside.on = False

        recording.__wrapped__ = original  # type: ignore[attr-defined]
        return recording


def _text(query: Any, cur: Any) -> str:
    if isinstance(query, bytes):
        return query.decode()
    if isinstance(query, str):
        return query
    return query.as_string(cur.connection)  # psycopg.sql.Composable


def _adapter_site() -> str | None:
    """The first caller outside psycopg, if it is in the adapter package."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("psycopg.", "psycopg_pool")) and module != "psycopg":
            if module == ADAPTER_PACKAGE or module.startswith(ADAPTER_PACKAGE + "."):
                code = frame.f_code
                return f"{code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} in {code.co_name}"
            return None
        frame = frame.f_back
    return None


# -- the plugin ---------------------------------------------------------------------------------

LOG = StatementLog()


@pytest.fixture(scope="session", autouse=True)
def adapter_statements() -> Iterator[StatementLog]:
    """Session-wide: records every adapter statement and fails the session's end on any that
    breaks the rule. Tests take `adapter_statements.capture()` for a block of their own."""
    report = Report()  # checks as it goes: the suite runs too many statements to keep
    LOG.install()
    LOG.sinks.append(report)
    try:
        yield LOG
    finally:
        LOG.sinks.remove(report)
        LOG.uninstall()
    if report:
        pytest.fail(f"graph adapter statements break the shard rule:\n{report}", pytrace=False)
