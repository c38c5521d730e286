"""An in-memory recorder for asserting what the domain measured.

`RecordingTelemetry` implements the `newsfeed.telemetry.Telemetry` port and keeps every call as
a `Measurement` (kind, metric name, value, labels), in call order. It checks nothing about the
catalogue and formats nothing: the real adapters (`feed_adapters.prometheus.telemetry` and
`feed_lambda.telemetry`) are tested separately, in tests/unit/test_telemetry_catalogue.py and
tests/unit/test_emf_telemetry.py.

    rec = RecordingTelemetry()
    services = build_services(settings, ..., telemetry=rec)
    services.feed.home_feed(reader, None, 20)
    assert rec.values(FEED_READ_SECONDS, outcome="rebuilt")  # one duration per read
    assert rec.total(TIMELINE_REBUILDS, cause="missing") == 1
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from newsfeed.telemetry import Metric

Kind = Literal["count", "observe", "set"]


@dataclass(frozen=True, slots=True)
class Measurement:
    kind: Kind
    name: str
    value: float
    labels: dict[str, str]


class RecordingTelemetry:
    def __init__(self) -> None:
        self.measurements: list[Measurement] = []
        self._lock = threading.Lock()  # the fan-out worker and the API measure from threads

    # -- the port ---------------------------------------------------------------------------------

    def count(self, metric: Metric, value: float = 1, **labels: str) -> None:
        self._record("count", metric, value, labels)

    def observe(self, metric: Metric, value: float, **labels: str) -> None:
        self._record("observe", metric, value, labels)

    def set(self, metric: Metric, value: float, **labels: str) -> None:
        self._record("set", metric, value, labels)

    def _record(self, kind: Kind, metric: Metric, value: float, labels: dict[str, str]) -> None:
        with self._lock:
            self.measurements.append(Measurement(kind, metric.name, float(value), dict(labels)))

    # -- assertions helpers -----------------------------------------------------------------------

    def of(self, metric: Metric | str, **labels: str) -> list[Measurement]:
        """The measurements of `metric` whose labels include `labels` (all of them if none)."""
        name = metric if isinstance(metric, str) else metric.name
        with self._lock:
            return [
                m
                for m in self.measurements
                if m.name == name and all(m.labels.get(k) == v for k, v in labels.items())
            ]

    def values(self, metric: Metric | str, **labels: str) -> list[float]:
        """The values recorded for `metric` (with those labels), in order."""
        return [m.value for m in self.of(metric, **labels)]

    def total(self, metric: Metric | str, **labels: str) -> float:
        """The sum of the values: a counter's increase."""
        return sum(self.values(metric, **labels))

    def last(self, metric: Metric | str, **labels: str) -> float | None:
        """A gauge's value: the last one set (None if never)."""
        values = self.values(metric, **labels)
        return values[-1] if values else None

    def label_sets(self, metric: Metric | str) -> list[dict[str, str]]:
        """The labels of each measurement of `metric`, in order."""
        return [m.labels for m in self.of(metric)]

    def clear(self) -> None:
        with self._lock:
            self.measurements.clear()
