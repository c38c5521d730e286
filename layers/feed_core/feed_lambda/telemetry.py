"""The domain's telemetry as CloudWatch metrics, through Powertools' Embedded Metric Format.

The names are the catalogue's (`newsfeed.telemetry`), the same the Prometheus adapter exposes;
the labels become dimensions, beside `service`. Observations are kept for the invocation and
written by `flush` at its end, one EMF document per dimension set (Powertools' `Metrics` holds
one dimension set per document), with every value of a metric in its array: CloudWatch computes
percentiles (p99 fan-out lag) from them.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from aws_lambda_powertools.metrics import EphemeralMetrics

from newsfeed.telemetry import Metric

log = logging.getLogger(__name__)

# EMF allows 100 values per metric in one document.
MAX_VALUES_PER_DOCUMENT = 100

_Key = tuple[tuple[str, str], ...]


class EmfTelemetry:
    def __init__(self, namespace: str, service: str) -> None:
        self._namespace = namespace
        self._service = service
        # dimension set -> metric -> values of this invocation
        self._pending: defaultdict[_Key, defaultdict[Metric, list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )

    def _add(self, metric: Metric, value: float, labels: dict[str, str]) -> None:
        key = tuple(sorted(labels.items()))
        self._pending[key][metric].append(float(value))

    def count(self, metric: Metric, value: float = 1, **labels: str) -> None:
        self._add(metric, value, labels)

    def observe(self, metric: Metric, value: float, **labels: str) -> None:
        self._add(metric, value, labels)

    def set(self, metric: Metric, value: float, **labels: str) -> None:
        # A gauge is its last value in the invocation.
        key = tuple(sorted(labels.items()))
        self._pending[key][metric] = [float(value)]

    def flush(self) -> None:
        """Write what this invocation recorded to stdout (CloudWatch Logs extracts the metrics)
        and forget it. Never raises: losing metrics must not fail the invocation."""
        pending, self._pending = self._pending, defaultdict(lambda: defaultdict(list))
        for dimensions, metrics in pending.items():
            try:
                self._write(dimensions, metrics)
            except Exception:
                log.exception("could not write EMF metrics for %s", dict(dimensions))

    def _write(self, dimensions: _Key, metrics: dict[Metric, list[float]]) -> None:
        start = 0
        while True:
            doc = EphemeralMetrics(namespace=self._namespace, service=self._service)
            for name, value in dimensions:
                doc.add_dimension(name=name, value=value)
            wrote = False
            for metric, values in metrics.items():
                for value in values[start : start + MAX_VALUES_PER_DOCUMENT]:
                    doc.add_metric(name=metric.name, unit=metric.unit, value=value)
                    wrote = True
            if not wrote:
                return
            doc.flush_metrics()
            start += MAX_VALUES_PER_DOCUMENT
