"""What the platform measures about itself, and the port it measures through.

Every metric is declared here once, with Prometheus' naming conventions (base units, `_seconds`,
`_total`, `_bytes`) and bounded labels: never a user or a post id. The adapters publish the same
names: `feed_adapters.prometheus` (the dev API and the fan-out worker, scraped at /metrics) and
`feed_lambda.telemetry` (Powertools EMF on Lambda, CloudWatch metrics of the same name with the
labels as dimensions). docs/monitoring.md lists them with the dashboards and alerts that use
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

MetricKind = Literal["counter", "histogram", "gauge"]

# Request and read latencies: 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Fan-out lag, post to timeline write: a healthy pipeline is sub-second, an outage or a backlog
# is minutes; past 15 minutes all that matters is that it is too late.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)
# Timelines written by one job: a chunk holds up to FANOUT_CHUNK_SIZE (1,000) followers.
FANOUT_WIDTH_BUCKETS = (0, 1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    # Every value of each label, when they are known: the series are created at 0 before the
    # first event, so the first increment shows in rate() and "none yet" reads 0, not no data.
    label_values: tuple[tuple[str, ...], ...] = ()

    @property
    def unit(self) -> str:
        """The CloudWatch unit the name's suffix says."""
        if self.name.endswith("_seconds"):
            return "Seconds"
        if self.name.endswith("_bytes"):
            return "Bytes"
        return "Count"


def _counter(
    name: str, help: str, *labels: str, values: tuple[tuple[str, ...], ...] = ()
) -> Metric:
    return Metric(name, "counter", help, labels, label_values=values)


def _histogram(
    name: str,
    help: str,
    buckets: tuple[float, ...],
    *labels: str,
    values: tuple[tuple[str, ...], ...] = (),
) -> Metric:
    return Metric(name, "histogram", help, labels, buckets, values)


READ_OUTCOMES = ("cached", "rebuilt", "lazy", "partial")
REBUILD_CAUSES = ("missing", "stale")
CACHE_RESULTS = ("hit", "miss")
STORES = ("postgres", "postgres_replica", "mongodb", "redis", "sqs")
STORE_ERROR_KINDS = ("timeout", "unavailable", "busy", "shed")
FANOUT_JOB_KINDS = (
    "push",
    "push_chunk",
    "retract",
    "retract_chunk",
    "backfill",
    "backfill_chunk",
    "merge",
    "refresh",
    "invalid",
)
JOB_OUTCOMES = ("done", "failed")
UPLOAD_OUTCOMES = ("ready", "failed", "ignored", "error")


def _gauge(name: str, help: str, *labels: str) -> Metric:
    return Metric(name, "gauge", help, labels)


# -- the read and write paths ------------------------------------------------------------------

HTTP_REQUEST_SECONDS = _histogram(
    "feed_http_request_duration_seconds",
    "API request duration by route template, method and status code.",
    LATENCY_BUCKETS,
    "route",
    "method",
    "status",
)
FEED_READ_SECONDS = _histogram(
    "feed_read_duration_seconds",
    "Home feed page assembly by outcome: cached (from Redis), rebuilt (a timeline or author "
    "list rebuilt from the post store), lazy (below the timeline's cap: from the author lists or "
    "the post store), partial (a store failed; the page may miss items).",
    LATENCY_BUCKETS,
    "outcome",
    values=(READ_OUTCOMES,),
)
TIMELINE_REBUILDS = _counter(
    "feed_timeline_rebuilds_total",
    "Home timelines rebuilt from the author lists, by cause: missing (never built, evicted or "
    "dropped) or stale (the reader was inactive, so fan-out skipped them).",
    "cause",
    values=(REBUILD_CAUSES,),
)
POST_CACHE_LOOKUPS = _counter(
    "feed_post_cache_lookups_total",
    "Post bodies looked up in the Redis post cache, by result (hit or miss).",
    "result",
    values=(CACHE_RESULTS,),
)

# -- fan-out ------------------------------------------------------------------------------------

FANOUT_LAG_SECONDS = _histogram(
    "feed_fanout_lag_seconds",
    "From a post's creation (its id's timestamp) to its write into followers' timelines.",
    LAG_BUCKETS,
)
FANOUT_TIMELINES_WRITTEN = _histogram(
    "feed_fanout_timelines_written",
    "Home timelines one fan-out job wrote into (existing timelines of active followers).",
    FANOUT_WIDTH_BUCKETS,
    "kind",
)
FANOUT_JOBS = _counter(
    "feed_fanout_jobs_total",
    "Fan-out jobs run, by kind and outcome (done or failed; a failed job is retried by SQS).",
    "kind",
    "outcome",
    values=(FANOUT_JOB_KINDS, JOB_OUTCOMES),
)
FANOUT_CHUNK_JOBS = _counter(
    "feed_fanout_chunk_jobs_queued_total",
    "Chunk jobs a head job queued (one per FANOUT_CHUNK_SIZE followers), by kind.",
    "kind",
)
QUEUE_MESSAGES = _gauge(
    "feed_queue_messages",
    "Messages in the fan-out queue and its dead-letter queue, by state (visible, in_flight, "
    "delayed).",
    "queue",
    "state",
)
QUEUE_OLDEST_AGE_SECONDS = _gauge(
    "feed_queue_oldest_message_age_seconds",
    "Age of the oldest message seen in the queue (0 when it is empty).",
    "queue",
)

# -- stores and engagement ----------------------------------------------------------------------

STORE_ERRORS = _counter(
    "feed_store_errors_total",
    "Store calls that failed, by store (postgres, postgres_replica, mongodb, redis, sqs) and "
    "kind: timeout, unavailable (refused, reset), busy (a lock or statement timeout; the store "
    "answered) or shed (refused at once by the open circuit breaker). A replica's failures "
    "cost no request: the primary answers.",
    "store",
    "kind",
    values=(STORES, STORE_ERROR_KINDS),
)
ENGAGEMENT_BUFFER_LENGTH = _gauge(
    "feed_engagement_buffer_length",
    "Impression counts waiting in Redis for the impressions job to move them to MongoDB.",
)

# -- scheduled jobs (pushed to the Pushgateway locally, EMF on Lambda) -------------------------

JOB_LAST_SUCCESS = _gauge(
    "feed_job_last_success_timestamp_seconds",
    "Unix time of the scheduled job's last successful run.",
    "job",
)
JOB_DURATION_SECONDS = _gauge(
    "feed_job_duration_seconds",
    "Duration of the scheduled job's last run.",
    "job",
)
JOB_ITEMS = _gauge(
    "feed_job_items",
    "The counts of the scheduled job's last report (users warmed, posts re-queued, ...).",
    "job",
    "item",
)

MEDIA_UPLOADS = _counter(
    "feed_media_uploads_total",
    "Uploads the media function handled, by outcome: ready (variants written), failed (refused: "
    "not an image, too large), ignored (processed already, or no record's), error (a store or "
    "the bucket failed; S3 retries the event).",
    "outcome",
    values=(UPLOAD_OUTCOMES,),
)

CATALOGUE: tuple[Metric, ...] = (
    HTTP_REQUEST_SECONDS,
    FEED_READ_SECONDS,
    TIMELINE_REBUILDS,
    POST_CACHE_LOOKUPS,
    FANOUT_LAG_SECONDS,
    FANOUT_TIMELINES_WRITTEN,
    FANOUT_JOBS,
    FANOUT_CHUNK_JOBS,
    QUEUE_MESSAGES,
    QUEUE_OLDEST_AGE_SECONDS,
    STORE_ERRORS,
    ENGAGEMENT_BUFFER_LENGTH,
    JOB_LAST_SUCCESS,
    JOB_DURATION_SECONDS,
    JOB_ITEMS,
    MEDIA_UPLOADS,
)


class Telemetry(Protocol):
    """Where measurements go. Implementations must be cheap and never raise: a metric that
    cannot be recorded is lost, the request is not."""

    def count(self, metric: Metric, value: float = 1, **labels: str) -> None: ...
    def observe(self, metric: Metric, value: float, **labels: str) -> None: ...
    def set(self, metric: Metric, value: float, **labels: str) -> None: ...


class NoTelemetry:
    """The default: measures nothing (unit tests, tools)."""

    def count(self, metric: Metric, value: float = 1, **labels: str) -> None:
        pass

    def observe(self, metric: Metric, value: float, **labels: str) -> None:
        pass

    def set(self, metric: Metric, value: float, **labels: str) -> None:
        pass


NO_TELEMETRY = NoTelemetry()
