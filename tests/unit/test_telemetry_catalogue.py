"""The metric catalogue (newsfeed.telemetry) follows Prometheus' conventions, and the Prometheus
adapter exposes every metric of it, with the series of known label values already at 0."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from feed_adapters.prometheus.telemetry import PrometheusTelemetry, _collector
from newsfeed.telemetry import (
    CATALOGUE,
    FEED_READ_SECONDS,
    JOB_ITEMS,
    STORE_ERROR_KINDS,
    STORE_ERRORS,
    STORES,
    Metric,
)

IDS = [m.name for m in CATALOGUE]
ID_LABELS = {"id", "user_id", "post_id", "reader_id", "author_id", "follower_id", "job_id"}
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def test_names_are_unique_and_prefixed() -> None:
    assert len(IDS) == len(set(IDS))
    for name in IDS:
        assert NAME.match(name), name
        assert name.startswith("feed_"), name


@pytest.mark.parametrize("metric", CATALOGUE, ids=IDS)
def test_counters_end_in_total_and_nothing_else_does(metric: Metric) -> None:
    assert metric.name.endswith("_total") == (metric.kind == "counter"), metric.name


@pytest.mark.parametrize("metric", CATALOGUE, ids=IDS)
def test_histograms_have_sorted_buckets_and_only_histograms_have_buckets(metric: Metric) -> None:
    if metric.kind == "histogram":
        assert metric.buckets, metric.name
        assert list(metric.buckets) == sorted(set(metric.buckets)), metric.name
    else:
        assert metric.buckets == (), metric.name


@pytest.mark.parametrize("metric", CATALOGUE, ids=IDS)
def test_the_unit_is_the_names_suffix(metric: Metric) -> None:
    base = metric.name.removesuffix("_total")
    if base.endswith("_seconds"):
        assert metric.unit == "Seconds"
    elif base.endswith("_bytes"):
        assert metric.unit == "Bytes"
    else:
        assert metric.unit == "Count"
    # Base units only: no milliseconds, minutes or kilobytes.
    assert not re.search(r"_(ms|milliseconds|minutes|hours|kb|mb)(_|$)", metric.name)


def test_unit_by_suffix_on_made_up_metrics() -> None:
    assert Metric("feed_x_seconds", "gauge", "h").unit == "Seconds"
    assert Metric("feed_x_bytes", "gauge", "h").unit == "Bytes"
    assert Metric("feed_x_total", "counter", "h").unit == "Count"
    assert Metric("feed_x_items", "gauge", "h").unit == "Count"


@pytest.mark.parametrize("metric", CATALOGUE, ids=IDS)
def test_no_label_is_an_id(metric: Metric) -> None:
    for label in metric.labels:
        assert label not in ID_LABELS, (metric.name, label)
        assert not label.endswith("_id"), (metric.name, label)
        assert NAME.match(label) and not label.startswith("__"), (metric.name, label)
    assert len(metric.labels) == len(set(metric.labels)), metric.name
    assert metric.help.strip(), metric.name


@pytest.mark.parametrize("metric", [m for m in CATALOGUE if m.label_values], ids=str)
def test_known_label_values_give_one_tuple_per_label(metric: Metric) -> None:
    assert len(metric.label_values) == len(metric.labels), metric.name
    for values in metric.label_values:
        assert values, metric.name
        assert len(values) == len(set(values)), metric.name
        assert all(isinstance(v, str) and v for v in values), metric.name


@pytest.mark.parametrize("metric", CATALOGUE, ids=IDS)
def test_every_metric_has_a_prometheus_collector(metric: Metric) -> None:
    _collector(metric, CollectorRegistry())


def test_the_exposition_parses_and_has_every_metric() -> None:
    text = PrometheusTelemetry().exposition().decode()
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    for metric in CATALOGUE:
        # The parser names a counter's family without its `_total`.
        family = parsed.get(
            metric.name.removesuffix("_total") if metric.kind == "counter" else metric.name
        )
        assert family is not None, metric.name
        assert family.type == metric.kind, metric.name
        assert f"# HELP {metric.name} " in text, metric.name


def zero_series(text: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    return {
        (s.name, frozenset(s.labels.items()))
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.value == 0
    }


def test_known_label_combinations_start_at_zero() -> None:
    text = PrometheusTelemetry().exposition().decode()
    zeros = zero_series(text)
    assert (
        "feed_store_errors_total",
        frozenset({"store": "redis", "kind": "shed"}.items()),
    ) in zeros
    for metric in (m for m in CATALOGUE if m.label_values):
        for combination in itertools.product(*metric.label_values):
            labels = dict(zip(metric.labels, combination, strict=True))
            sample = metric.name if metric.kind == "counter" else f"{metric.name}_count"
            assert (sample, frozenset(labels.items())) in zeros, (metric.name, labels)
    assert len([z for z in zeros if z[0] == "feed_store_errors_total"]) == len(STORES) * len(
        STORE_ERROR_KINDS
    )


def samples(telemetry: PrometheusTelemetry) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(telemetry.exposition().decode())
        for s in f.samples
    }


def test_counts_observations_and_gauges_reach_the_exposition() -> None:
    telemetry = PrometheusTelemetry()
    telemetry.count(STORE_ERRORS, store="redis", kind="timeout")
    telemetry.count(STORE_ERRORS, 2, store="redis", kind="timeout")
    telemetry.observe(FEED_READ_SECONDS, 0.003, outcome="cached")
    telemetry.set(JOB_ITEMS, 7, job="prewarm", item="users")
    telemetry.set(JOB_ITEMS, 9, job="prewarm", item="users")
    got = samples(telemetry)
    assert (
        got[("feed_store_errors_total", frozenset({"store": "redis", "kind": "timeout"}.items()))]
        == 3
    )
    cached = frozenset({"outcome": "cached"}.items())
    assert got[("feed_read_duration_seconds_count", cached)] == 1
    assert got[("feed_read_duration_seconds_bucket", cached | {("le", "0.005")})] == 1
    assert got[("feed_read_duration_seconds_bucket", cached | {("le", "0.0025")})] == 0
    assert got[("feed_job_items", frozenset({"job": "prewarm", "item": "users"}.items()))] == 9


def test_two_instances_do_not_share_a_registry() -> None:
    one, two = PrometheusTelemetry(), PrometheusTelemetry()
    one.count(STORE_ERRORS, store="postgres", kind="busy")
    busy = ("feed_store_errors_total", frozenset({"store": "postgres", "kind": "busy"}.items()))
    assert samples(one)[busy] == 1
    assert samples(two)[busy] == 0


@pytest.mark.parametrize(
    "labels",
    [{}, {"store": "redis"}, {"store": "redis", "kind": "shed", "user_id": "7"}, {"shop": "x"}],
    ids=["none", "missing", "extra", "wrong"],
)
def test_wrong_labels_are_logged_never_raised(
    labels: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = PrometheusTelemetry()
    with caplog.at_level(logging.ERROR, logger="feed_adapters.prometheus.telemetry"):
        telemetry.count(STORE_ERRORS, **labels)
        telemetry.observe(FEED_READ_SECONDS, 0.1, **labels)
        telemetry.set(JOB_ITEMS, 1, **labels)
    assert len(caplog.records) == 3
    assert "feed_store_errors_total" in caplog.records[0].getMessage()
    # Nothing was counted anywhere by the failed calls.
    text = telemetry.exposition().decode()
    assert not [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "feed_store_errors_total" and s.value != 0
    ]


def test_docs_monitoring_lists_every_metric_of_the_catalogue() -> None:
    # docs/monitoring.md is the operator's reference: a metric added without a row fails here.
    docs = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    assert [m.name for m in CATALOGUE if f"`{m.name}`" not in docs] == []
