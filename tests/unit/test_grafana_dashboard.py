"""The Grafana dashboard and its provisioning, checked as files (no Grafana, no Prometheus).

The live check (every panel's query returns data after a workload) needs the running stack; here
the dashboard is well formed, names only metrics the catalogue declares, and its provisioning,
compose mounts and renderer agree with each other.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra.monitoring import render_dashboard as rd
from infra.monitoring.dashboard import (
    DEFAULT,
    GRAFANA_DIR,
    iter_panels,
    load_dashboard,
    panel_queries,
    substitute,
)
from newsfeed.telemetry import CATALOGUE

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "infra" / "compose.yaml"
DATASOURCE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "feed-platform.yml"
UNITS = {"s", "reqps", "ops", "percentunit", "bytes", "short"}
DATASOURCE_REF = {"type": "prometheus", "uid": "prometheus"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return load_dashboard()


def panels(dashboard: dict) -> list[dict]:
    return [p for p in iter_panels(dashboard) if p.get("type") != "row"]


def test_the_dashboard_identifies_itself(dashboard):
    assert dashboard["uid"] == "feed-platform"
    assert dashboard["title"]
    assert dashboard["tags"]
    assert dashboard["refresh"] == "30s"
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}
    assert 36 <= dashboard["schemaVersion"] <= 41


def test_panel_ids_are_unique(dashboard):
    ids = [p["id"] for p in iter_panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_every_panel_is_complete(dashboard):
    for panel in iter_panels(dashboard):
        assert panel.get("title"), panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "gauge"}, panel["title"]
        assert panel.get("description", "").strip(), panel["title"]
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, panel["title"]
        targets = panel.get("targets", [])
        assert targets and all(t.get("expr") for t in targets), panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target.get("datasource", DATASOURCE_REF) == DATASOURCE_REF, panel["title"]


def test_panels_do_not_overlap(dashboard):
    cells: dict[tuple[int, int], str] = {}
    for panel in iter_panels(dashboard):
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_rates_use_the_rate_interval(dashboard):
    for panel in panels(dashboard):
        for target in panel["targets"]:
            for window in re.findall(r"rate\([^\[]*\[([^\]]+)\]", target["expr"]):
                assert window == "$__rate_interval", (panel["title"], target["expr"])


def test_every_feed_metric_is_in_the_catalogue(dashboard):
    declared = {m.name: m for m in CATALOGUE}
    used = set()
    for panel in panels(dashboard):
        for target in panel["targets"]:
            for name in re.findall(r"\bfeed_[a-z0-9_]+", target["expr"]):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                metric = declared.get(name) or declared.get(base)
                assert metric, f"{panel['title']}: {name} is not in newsfeed.telemetry"
                if metric.name != name:
                    assert metric.kind == "histogram", f"{name}: {metric.name} is a {metric.kind}"
                used.add(metric.name)
    # The dashboard shows every metric the catalogue declares.
    assert used == set(declared)


def test_the_golden_signals_of_each_path_are_there(dashboard):
    exprs = " ".join(t["expr"] for p in panels(dashboard) for t in p["targets"])
    for route in ("/v1/feed", "/v1/posts", "/v1/me/following/{user_id}"):
        assert f'route="{route}"' in exprs
    assert "histogram_quantile(0.99, sum by (le) (rate(feed_fanout_lag_seconds_bucket" in exprs
    assert "time() - max by (job) (feed_job_last_success_timestamp_seconds)" in exprs
    for metric in ("up", "redis_memory_used_bytes", "pg_stat_database_xact_commit"):
        assert re.search(rf"\b{metric}\b", exprs), metric


def test_the_datasource_provisioning_has_the_uid_the_panels_use():
    provisioned = yaml.safe_load(DATASOURCE.read_text())
    (source,) = provisioned["datasources"]
    assert source["uid"] == DATASOURCE_REF["uid"]
    assert source["type"] == DATASOURCE_REF["type"]
    assert source["url"] in ("$PROMETHEUS_URL", "${PROMETHEUS_URL}")


def grafana_service() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]


def mounts(service: dict) -> dict[str, str]:
    """Container path -> host path (relative to infra/, where compose.yaml is)."""
    out = {}
    for volume in service["volumes"]:
        host, container, *_ = volume.split(":")
        out[container] = str((COMPOSE.parent / host).resolve())
    return out


def test_compose_mounts_the_provisioning_and_the_dashboards_where_the_provider_looks():
    service = grafana_service()
    assert re.fullmatch(r"grafana/grafana-oss:\d+\.\d+\.\d+", service["image"])
    mounted = mounts(service)
    assert mounted["/etc/grafana/provisioning"] == str(GRAFANA_DIR / "provisioning")
    (provider,) = yaml.safe_load(PROVIDER.read_text())["providers"]
    assert provider["type"] == "file"
    assert mounted[provider["options"]["path"]] == str(DEFAULT.parent)
    # make up's Prometheus listens on 127.0.0.1: only the host's network reaches it.
    assert service["network_mode"] == "host"
    assert service["environment"]["PROMETHEUS_URL"].endswith("127.0.0.1:9090}")
    assert service["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"


def test_panel_queries_substitutes_grafanas_variables():
    dashboard = {
        "panels": [
            {
                "type": "row",
                "id": 1,
                "title": "collapsed",
                "collapsed": True,
                "panels": [
                    {
                        "type": "timeseries",
                        "id": 2,
                        "title": "nested",
                        "fieldConfig": {"defaults": {"unit": "reqps"}},
                        "targets": [
                            {"refId": "A", "expr": "rate(x_total[$__rate_interval])"},
                            {"refId": "B", "expr": "rate(y[${__interval}])", "legendFormat": "y"},
                            {"refId": "C", "expr": "hidden", "hide": True},
                        ],
                    }
                ],
            },
            {
                "type": "stat",
                "id": 3,
                "title": "top",
                "targets": [{"refId": "A", "expr": "increase(z[$__range]) / $__interval_ms"}],
            },
        ]
    }
    queries = panel_queries(dashboard, rate_interval="2m", interval="30s", range_="1h")
    assert [(q.panel_id, q.panel_title, q.ref_id) for q in queries] == [
        (2, "nested", "A"),
        (2, "nested", "B"),
        (3, "top", "A"),
    ]
    assert [q.expr for q in queries] == [
        "rate(x_total[2m])",
        "rate(y[30s])",
        "increase(z[1h]) / $__interval_ms",
    ]
    assert (queries[0].unit, queries[1].legend_format, queries[2].unit) == ("reqps", "y", "short")
    assert substitute("rate(a[$__rate_interval])") == "rate(a[1m])"


def test_every_query_of_the_real_dashboard_is_substituted(dashboard):
    queries = panel_queries(dashboard)
    assert len(queries) >= len(panels(dashboard))
    for q in queries:
        assert "$__" not in q.expr and "${__" not in q.expr, q


# -- the renderer, on a fabricated query_range answer (no Prometheus) ---------------------------


def fake_matrix(series: dict[str, list[float]], t0: float = 1_700_000_000.0) -> dict:
    return {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"outcome": outcome},
                "values": [[t0 + 15 * i, str(v)] for i, v in enumerate(values)],
            }
            for outcome, values in series.items()
        ],
    }


def test_the_renderers_main_panels_are_in_the_dashboard(dashboard):
    chosen = rd.main_panels(dashboard)
    assert 6 <= len(chosen) <= 8
    with pytest.raises(KeyError):
        rd.main_panels(dashboard, ["not a panel"])


def test_legends_follow_the_legend_format():
    metric = {"__name__": "m", "kind": "head", "outcome": "done"}
    assert rd.legend("{{kind}} {{ outcome }}", metric) == "head done"
    assert rd.legend("", metric) == 'm{kind="head", outcome="done"}'
    assert rd.legend("p99", {}) == "p99"


def test_plotting_a_fabricated_query_range_answer_writes_a_png(tmp_path):
    data = fake_matrix({"cached": [0.002, 0.003, "NaN"], "rebuilt": [0.02, 0.04, 0.03]})
    series = rd.series_from_response(data, "{{outcome}}")
    assert [s.label for s in series] == ["cached", "rebuilt"]
    panel = rd.PanelData(1, "Feed read duration p99 by outcome", "what is bad", "s", series)
    empty = rd.PanelData(2, "Fan-out lag p50 / p99", "nothing yet", "s", errors=["A: refused"])
    assert panel.has_data and not empty.has_data

    rd.render_panel(panel, tmp_path / "one.png", "a window")
    rd.render_panel(empty, tmp_path / "empty.png")
    rd.render_grid([panel, empty, panel], tmp_path / "grid.png", "grid")
    for name in ("one.png", "empty.png", "grid.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_reports_panels_without_data_and_ignores_fallback_zeros(dashboard, tmp_path):
    def query_for(start, end, step):
        assert (end - start, step) == (900, 15)

        def query(expr):
            if "feed_read_duration_seconds_bucket[60s]" in expr:
                return fake_matrix({"cached": [0.002, 0.004]})
            if expr.endswith("or vector(0)"):
                return {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "0"]]}]}
            return {"resultType": "matrix", "result": []}

        return query

    start = 1_700_000_000.0
    out = rd.render(dashboard, query_for, tmp_path, start=start, end=start + 900)
    by_title = {p.title: p for p in out}
    assert by_title["Feed read duration p99 by outcome"].measured
    errors = by_title["Store errors by store and kind"]
    assert errors.has_data and not errors.measured
    assert not by_title["Fan-out lag p50 / p99"].has_data
    written = sorted(p.name for p in tmp_path.iterdir())
    assert "monitoring-dashboard.png" in written
    assert "monitoring-feed-read-duration-p99-by-outcome.png" in written
    assert len(written) == len(rd.MAIN_PANELS) + 1


def test_the_cli_fails_only_when_no_panel_has_data(tmp_path, monkeypatch, capsys):
    def refused(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(rd, "query_range", refused)
    assert rd.main(["--url", "http://127.0.0.1:1", "--out", str(tmp_path)]) == 1
    assert "NO DATA" in capsys.readouterr().out

    def some(base_url, expr, start, end, step):
        return fake_matrix({"cached": [1.0]}) if "feed_read" in expr else fake_matrix({})

    monkeypatch.setattr(rd, "query_range", some)
    assert rd.main(["--out", str(tmp_path), "--minutes", "5"]) == 0
