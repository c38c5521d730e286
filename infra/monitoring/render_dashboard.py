"""Render the dashboard's main panels to PNG from a real Prometheus (what `make dashboard` runs).

    python -m infra.monitoring.render_dashboard [--url URL] [--minutes 15] [--out docs/img]

For each main panel of the Grafana dashboard (its title, description, unit and queries come from
the JSON, so the pictures show what Grafana would), it runs /api/v1/query_range over the window
and plots the series with matplotlib: docs/img/monitoring-<panel>.png each, and all of them in
docs/img/monitoring-dashboard.png. A panel whose queries return nothing is drawn with a "no data"
note and listed; the exit status is 1 only when no panel had any data (Prometheus down, or
nothing ran; the zero an error panel shows through `or vector(0)` does not count), else 0.
PROMETHEUS_URL is the default URL (else http://127.0.0.1:9090).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullLocator, PercentFormatter

from infra.monitoring.dashboard import DEFAULT, iter_panels, load_dashboard, substitute

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "img"
DEFAULT_URL = "http://127.0.0.1:9090"
# The scrape interval of the project's Prometheus (as the datasource's timeInterval says; keep
# both equal to the scrape config's). Grafana's $__rate_interval is
# max(4 x scrape interval, $__interval + scrape interval).
SCRAPE_INTERVAL_S = 15

# The panels worth a picture in the README: one or two golden signals per path.
MAIN_PANELS = (
    "API requests by route",
    "Feed read duration p99 by outcome",
    "Post cache hit ratio",
    "Fan-out lag p50 / p99",
    "Fan-out jobs by kind and outcome",
    "Fan-out queue depth by state",
    "Store errors by store and kind",
    "Scheduled job duration",
)

UNIT_LABELS = {
    "s": "seconds",
    "reqps": "requests/s",
    "ops": "operations/s",
    "percentunit": "ratio",
    "bytes": "bytes",
    "short": "",
}

_FALLBACK = re.compile(r"\bor\s+vector\(0\)\s*$")

# Query runs `expr` over the window and returns Prometheus' `data` ({"resultType", "result"}).
Query = Callable[[str], dict[str, Any]]


@dataclass
class Series:
    label: str
    times: list[float]
    values: list[float]
    # From a `... or vector(0)` target: the zero a panel shows when nothing happened, not a
    # measurement.
    fallback: bool = False


@dataclass
class PanelData:
    panel_id: int
    title: str
    description: str
    unit: str
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(not math.isnan(v) for s in self.series for v in s.values)

    @property
    def measured(self) -> bool:
        """Data beyond a fallback zero: something was measured."""
        return any(not math.isnan(v) for s in self.series if not s.fallback for v in s.values)


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def query_range(
    base_url: str, expr: str, start: float, end: float, step: float, timeout: float = 10.0
) -> dict[str, Any]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/v1/query_range",
        data=params.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as e:
        # Prometheus answers a bad query with 400 and a JSON error.
        try:
            body = json.load(e)
        except ValueError:
            raise RuntimeError(f"HTTP {e.code} from Prometheus") from e
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
    return body["data"]


def legend(legend_format: str, metric: dict[str, str]) -> str:
    """Grafana's legend: `{{label}}` replaced by the series' label value."""
    if legend_format and legend_format != "__auto":
        text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), legend_format)
        return text.strip() or legend_format
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric.get('__name__', '')}{{{inner}}}" if inner else metric.get("__name__", "value")


def series_from_response(data: dict[str, Any], legend_format: str) -> list[Series]:
    if data.get("resultType") != "matrix":
        raise ValueError(f"expected a matrix, got {data.get('resultType')!r}")
    out = []
    for item in data.get("result", []):
        values = item.get("values", [])
        out.append(
            Series(
                label=legend(legend_format, item.get("metric", {})),
                times=[float(t) for t, _ in values],
                values=[float(v) for _, v in values],
            )
        )
    return out


def fetch_panel(panel: dict[str, Any], query: Query, **variables: str) -> PanelData:
    data = PanelData(
        panel_id=panel["id"],
        title=panel.get("title", ""),
        description=panel.get("description", ""),
        unit=panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short"),
    )
    for target in panel.get("targets", []):
        if target.get("hide") or not target.get("expr"):
            continue
        expr = substitute(target["expr"], **variables)
        try:
            series = series_from_response(query(expr), target.get("legendFormat", ""))
        except (OSError, RuntimeError, ValueError) as e:
            data.errors.append(f"{target.get('refId', '?')}: {e}")
            continue
        for s in series:
            s.fallback = _FALLBACK.search(expr) is not None
        data.series += series
    return data


def main_panels(dashboard: dict[str, Any], titles: Sequence[str] = MAIN_PANELS) -> list[dict]:
    by_title = {p.get("title"): p for p in iter_panels(dashboard) if p.get("type") != "row"}
    missing = [t for t in titles if t not in by_title]
    if missing:
        raise KeyError(f"panels not in the dashboard: {missing}")
    return [by_title[t] for t in titles]


def _format_axis(ax: Any, unit: str) -> None:
    if unit == "percentunit":
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    elif unit == "s":
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _: f"{v * 1000:.0f} ms" if abs(v) < 1 else f"{v:g} s")
        )
    elif unit == "bytes":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 2**20:.0f} MiB"))
    else:
        ax.set_ylabel(UNIT_LABELS.get(unit, unit), fontsize=8)
    # Concise: seconds appear when ticks fall within a minute (plain %H:%M printed 30 s ticks
    # as the same minute twice).
    locator = mdates.AutoDateLocator(tz=UTC, minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_panel(ax: Any, panel: PanelData) -> None:
    ax.set_title(panel.title, fontsize=10)
    _format_axis(ax, panel.unit)
    if not panel.has_data:
        note = "no data" + (f"\n{panel.errors[0][:80]}" if panel.errors else "")
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_yticks([])
        ax.xaxis.set_major_locator(NullLocator())
        return
    shown = drawn_series(panel.series)
    for s in shown:
        times = [datetime.fromtimestamp(t, tz=UTC) for t in s.times]
        ax.plot(times, s.values, label=s.label, lw=1.2)
    ax.set_ylim(bottom=0)
    hidden = len(panel.series) - len(shown)
    legend = ax.legend(fontsize=7, loc="upper left", ncol=2 if len(shown) > 4 else 1)
    if hidden:
        legend.set_title(f"{hidden} more series: 0 throughout", prop={"size": 7})


def drawn_series(series: Sequence[Series]) -> list[Series]:
    """The series worth a line: those not zero (or empty) throughout. The catalogue's known
    label values start at 0, so an error panel holds a dozen flat zeros; if nothing but zeros
    is left, one line shows that (the total, when there is one)."""

    def flat_zero(s: Series) -> bool:
        return all(math.isnan(v) or v == 0 for v in s.values)

    moving = [s for s in series if not flat_zero(s)]
    if moving:
        return moving
    with_values = [s for s in series if any(not math.isnan(v) for v in s.values)]
    totals = [s for s in with_values if s.label.lower() in ("total", "all routes")]
    return (totals or with_values)[:1]


def render_panel(panel: PanelData, path: Path, subtitle: str = "") -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    plot_panel(ax, panel)
    caption = "\n".join(x for x in (panel.description, subtitle) if x)
    fig.text(0.01, 0.01, caption, fontsize=7, color="dimgrey", wrap=True)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def render_grid(panels: Sequence[PanelData], path: Path, title: str) -> None:
    columns = 2
    rows = max(1, math.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(14, 3.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        plot_panel(ax, panel)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def grafana_variables(window_s: float, step_s: float) -> dict[str, str]:
    rate = max(4 * SCRAPE_INTERVAL_S, int(step_s) + SCRAPE_INTERVAL_S)
    return {
        "rate_interval": f"{rate}s",
        "interval": f"{int(step_s)}s",
        "range_": f"{int(window_s)}s",
    }


def render(
    dashboard: dict[str, Any],
    query_for: Callable[[float, float, float], Query],
    out_dir: Path,
    *,
    start: float,
    end: float,
    step: float | None = None,
    rate_interval: str | None = None,
    titles: Sequence[str] = MAIN_PANELS,
) -> list[PanelData]:
    """Fetch and plot the main panels; returns them (has_data tells which had data)."""
    window = end - start
    step = step or max(float(SCRAPE_INTERVAL_S), round(window / 240))
    variables = grafana_variables(window, step)
    if rate_interval:
        variables["rate_interval"] = rate_interval
    query = query_for(start, end, step)
    panels = [fetch_panel(p, query, **variables) for p in main_panels(dashboard, titles)]
    out_dir.mkdir(parents=True, exist_ok=True)
    span = (
        f"{datetime.fromtimestamp(start, tz=UTC):%Y-%m-%d %H:%M} to "
        f"{datetime.fromtimestamp(end, tz=UTC):%H:%M} UTC, step {step:g}s"
    )
    for panel in panels:
        render_panel(panel, out_dir / f"monitoring-{slug(panel.title)}.png", span)
    render_grid(panels, out_dir / "monitoring-dashboard.png", f"{dashboard.get('title')}: {span}")
    return panels


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("PROMETHEUS_URL", DEFAULT_URL))
    parser.add_argument("--minutes", type=float, default=15.0, help="window ending now (15)")
    parser.add_argument("--end", type=float, help="window end, Unix seconds (default: now)")
    parser.add_argument("--step", type=float, help="query step, seconds (default: window/240)")
    parser.add_argument("--rate-interval", help="$__rate_interval (default: Grafana's rule)")
    parser.add_argument("--dashboard", type=Path, default=DEFAULT)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (docs/img)")
    args = parser.parse_args(argv)

    end = args.end or time.time()
    start = end - args.minutes * 60

    def query_for(start: float, end: float, step: float) -> Query:
        return lambda expr: query_range(args.url, expr, start, end, step)

    panels = render(
        load_dashboard(args.dashboard),
        query_for,
        args.out,
        start=start,
        end=end,
        step=args.step,
        rate_interval=args.rate_interval,
    )
    for panel in panels:
        if panel.measured:
            state = f"{len(panel.series)} series"
        else:
            state = "zero only" if panel.has_data else "NO DATA"
        print(f"{state:>10}  {panel.title}")
        for error in panel.errors:
            print(f"{'':>10}  query error {error}")
    print(f"wrote {len(panels) + 1} PNGs under {args.out} from {args.url}")
    if not any(p.measured for p in panels):
        print("no panel had data: is Prometheus up and has traffic run?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
