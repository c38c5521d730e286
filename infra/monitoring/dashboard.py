"""The Grafana dashboard as data: its panels and their PromQL, with Grafana's variables filled in.

`infra/monitoring/grafana/dashboards/feed-platform.json` is the one source of the queries: the
renderer (`render_dashboard.py`) and the tests read them from it instead of repeating them.
Grafana substitutes `$__rate_interval`, `$__interval` and `$__range` itself; outside Grafana,
`panel_queries` does it with the values given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GRAFANA_DIR = Path(__file__).resolve().parent / "grafana"
DEFAULT = GRAFANA_DIR / "dashboards" / "feed-platform.json"

# `$__name` or `${__name}`; `$__interval_ms` and `$__range_s` are other variables, left alone.
_NAMES = "rate_interval|interval|range"
_VARIABLE = re.compile(rf"\$\{{__({_NAMES})\}}|\$__({_NAMES})\b")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str
    legend_format: str = ""
    unit: str = "short"


def load_dashboard(path: Path | str = DEFAULT) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, in order; a collapsed row's panels follow the row."""
    for panel in dashboard.get("panels", []):
        yield panel
        if panel.get("type") == "row":
            yield from panel.get("panels", [])


def substitute(
    expr: str, *, rate_interval: str = "1m", interval: str = "15s", range_: str = "15m"
) -> str:
    values = {"rate_interval": rate_interval, "interval": interval, "range": range_}
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def panel_queries(
    dashboard: dict[str, Any],
    *,
    rate_interval: str = "1m",
    interval: str = "15s",
    range_: str = "15m",
) -> list[PanelQuery]:
    """The queries of every non-row panel (nested rows too), Grafana's variables substituted."""
    values = {"rate_interval": rate_interval, "interval": interval, "range_": range_}
    queries = []
    for panel in iter_panels(dashboard):
        if panel.get("type") == "row":
            continue
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        for target in panel.get("targets", []):
            if target.get("hide") or not target.get("expr"):
                continue
            queries.append(
                PanelQuery(
                    panel_id=panel["id"],
                    panel_title=panel.get("title", ""),
                    ref_id=target.get("refId", ""),
                    expr=substitute(target["expr"], **values),
                    legend_format=target.get("legendFormat", ""),
                    unit=unit,
                )
            )
    return queries
