"""The domain's telemetry as prometheus-client collectors, for the processes Prometheus scrapes:
the dev API server (`/metrics` beside the API) and the local fan-out worker.

prometheus-client is a development dependency (`feed-core[prometheus]`): Lambda functions
publish the same catalogue through EMF (`feed_lambda.telemetry`) and never import this module.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from newsfeed.telemetry import CATALOGUE, Metric

log = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE_LATEST", "PrometheusTelemetry"]


def _collector(metric: Metric, registry: CollectorRegistry) -> Any:
    if metric.kind == "counter":
        # prometheus-client adds the `_total` suffix itself.
        return Counter(
            metric.name.removesuffix("_total"), metric.help, metric.labels, registry=registry
        )
    if metric.kind == "histogram":
        return Histogram(
            metric.name, metric.help, metric.labels, buckets=metric.buckets, registry=registry
        )
    return Gauge(metric.name, metric.help, metric.labels, registry=registry)


class PrometheusTelemetry:
    """One collector per catalogue metric, in a registry of its own (not the library's global
    one, so two instances in one test process do not clash)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._collectors = {m.name: _collector(m, self.registry) for m in CATALOGUE}
        for metric in CATALOGUE:
            if not metric.label_values:
                continue
            for combination in itertools.product(*metric.label_values):
                self._collectors[metric.name].labels(*combination)

    def _child(self, metric: Metric, labels: dict[str, str]) -> Any:
        collector = self._collectors[metric.name]
        return collector.labels(**labels) if metric.labels else collector

    def count(self, metric: Metric, value: float = 1, **labels: str) -> None:
        try:
            self._child(metric, labels).inc(value)
        except Exception:  # a metric must never fail a request
            log.exception("could not count %s %s", metric.name, labels)

    def observe(self, metric: Metric, value: float, **labels: str) -> None:
        try:
            self._child(metric, labels).observe(value)
        except Exception:
            log.exception("could not observe %s %s", metric.name, labels)

    def set(self, metric: Metric, value: float, **labels: str) -> None:
        try:
            self._child(metric, labels).set(value)
        except Exception:
            log.exception("could not set %s %s", metric.name, labels)

    def exposition(self) -> bytes:
        """The registry in the text format (`CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)
