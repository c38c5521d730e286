"""A scheduled job's run pushed to a Prometheus Pushgateway: a batch job is over before any
scrape could see it, so it leaves its result where Prometheus will find it.

Standard library only (the text exposition format over HTTP PUT): scheduled functions push from
the emulator without prometheus-client in their package.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import quote
from urllib.request import Request, urlopen

from newsfeed.telemetry import JOB_DURATION_SECONDS, JOB_ITEMS, JOB_LAST_SUCCESS, Metric

log = logging.getLogger(__name__)

_LABEL_VALUE_ESCAPES = str.maketrans({"\\": r"\\", '"': r"\"", "\n": r"\n"})
_ITEM = re.compile(r"[^a-zA-Z0-9_]")


def _sample(metric: Metric, sample: float, labels: Mapping[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(
            f'{name}="{str(value).translate(_LABEL_VALUE_ESCAPES)}"'
            for name, value in labels.items()
        )
        return f"{metric.name}{{{inner}}} {sample!r}\n"
    return f"{metric.name} {sample!r}\n"


def job_run_exposition(
    seconds: float, finished_at: float, report: Mapping[str, float], *, succeeded: bool
) -> str:
    """The text format of one run. The `job` label comes from the push's grouping key. A failed
    run carries only its duration: the last success time and report stay the previous run's."""

    def family(metric: Metric, samples: list[str]) -> str:
        return f"# HELP {metric.name} {metric.help}\n# TYPE {metric.name} gauge\n" + "".join(
            samples
        )

    out = [family(JOB_DURATION_SECONDS, [_sample(JOB_DURATION_SECONDS, float(seconds))])]
    if succeeded:
        out.append(family(JOB_LAST_SUCCESS, [_sample(JOB_LAST_SUCCESS, float(finished_at))]))
        items = [
            _sample(JOB_ITEMS, float(value), {"item": _ITEM.sub("_", item)})
            for item, value in sorted(report.items())
            if item != "seconds"
        ]
        if items:
            out.append(family(JOB_ITEMS, items))
    return "".join(out)


def push_job_run(
    url: str,
    job: str,
    seconds: float,
    finished_at: float,
    report: Mapping[str, float],
    *,
    succeeded: bool,
    timeout: float = 2.0,
) -> bool:
    """PUT the run to `url`/metrics/job/`job` (replacing the job's previous push). Returns False
    if the push failed: monitoring must never fail the job itself."""
    body = job_run_exposition(seconds, finished_at, report, succeeded=succeeded).encode()
    # POST replaces only the metrics it carries, so a failed run keeps the last success's;
    # PUT replaces the whole group (a report item that is gone goes too).
    method = "PUT" if succeeded else "POST"
    request = Request(
        f"{url.rstrip('/')}/metrics/job/{quote(job, safe='')}",
        data=body,
        method=method,
        headers={"Content-Type": "text/plain; version=0.0.4"},
    )
    try:
        with urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except OSError:
        log.warning("could not push the %s run to the Pushgateway at %s", job, url, exc_info=True)
        return False
