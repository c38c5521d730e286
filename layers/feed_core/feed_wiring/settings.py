"""Typed settings, read once at the edge (a handler's init or a CLI) and passed inward: the
composition root hands each adapter its part and the domain its `FeedRules`.

Standard library only, so that importing it costs a cold start nothing; the local platform
script (infra/devstack.py) shares these defaults with the application.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from newsfeed.rules import FeedRules

# Local services listen on 127.0.0.1 below 32768: ports from 32768 up are the kernel's
# ephemeral range here and collide with client sockets.
DEFAULT_POSTGRES_PORT = 15432
# The streaming standby `TOPOLOGY=scaled` runs beside the local primary (infra/devstack.py).
DEFAULT_POSTGRES_REPLICA_PORT = 15433
DEFAULT_REDIS_PORT = 16379
DEFAULT_MONGODB_PORT = 17017
DEFAULT_EMULATOR_PORT = 4566


@dataclass(frozen=True, slots=True)
class Settings:
    postgres_user: str = "feed"
    postgres_password: str = "feed"
    postgres_db: str = "feed"
    postgres_host: str = "127.0.0.1"
    postgres_port: int = DEFAULT_POSTGRES_PORT
    # A read replica (Aurora's reader endpoint, a streaming standby): None, the default, sends
    # every read to the primary. Same user, password and database as the primary.
    postgres_replica_host: str | None = None
    postgres_replica_port: int = DEFAULT_POSTGRES_REPLICA_PORT
    # Reads go to the replica only while it holds every commit older than this (measured
    # against the primary's WAL position); a user's own writes are read from the primary for
    # as long (read-your-writes). Checked at most every REPLICA_CHECK_MS per process.
    replica_max_lag_ms: int = 1_000
    replica_check_ms: int = 250
    redis_host: str = "127.0.0.1"
    redis_port: int = DEFAULT_REDIS_PORT
    redis_db: int = 0
    mongodb_url: str = f"mongodb://127.0.0.1:{DEFAULT_MONGODB_PORT}/"
    mongodb_db: str = "feed"
    aws_endpoint_url: str | None = f"http://127.0.0.1:{DEFAULT_EMULATOR_PORT}"
    aws_region: str = "us-east-1"
    # The queue URL wins; without it the queue is looked up by name (local emulator).
    fanout_queue_url: str | None = None
    fanout_queue_name: str = "feed-fanout"
    # Media uploads: the bucket (template.yaml's MediaBucket; locally `make up` creates this
    # one in the emulator), the largest upload taken, and how long an upload target is valid.
    media_bucket: str = "feed-media"
    media_max_bytes: int = 10 * 1024 * 1024
    media_upload_seconds: int = 300
    # Where variants are served from: the CloudFront distribution in AWS (template.yaml sets
    # it), a stable name in front of it in production; unset, the bucket's own S3 address
    # (locally the emulator's, which serves its buckets to anyone). No trailing slash.
    media_cdn_base: str | None = None
    # The CloudFront distribution behind it: a deleted post's media are invalidated there.
    media_cdn_distribution_id: str | None = None
    # Processing limits: pixels of an image (checked from the header, before decoding), and
    # of an animation its frames and their pixels in all.
    media_max_pixels: int = 40_000_000
    media_max_frames: int = 200
    media_max_animation_pixels: int = 100_000_000
    # Feed rules.
    celebrity_threshold: int = 10_000
    # Back to push below this follower count (None: 10% below the threshold).
    celebrity_threshold_low: int | None = None
    timeline_max_len: int = 800
    # Lazy trim: fan-out trims a timeline back to TIMELINE_MAX_LEN only once it exceeds
    # TIMELINE_MAX_LEN + this. None: 10% of the cap (caps >= 100), else 0. Cap + slack is kept
    # <= 1024 (bounds the O(n) walks of the timeline scripts; docs/design.md).
    timeline_trim_slack: int | None = None
    # Redis Cluster (ElastiCache cluster mode): fan-out pipelines one script call per timeline
    # instead of batching many timelines (keys of different users are in different slots).
    redis_cluster: bool = False
    # Writes nothing recomputes (fan-out, removals, tombstones, author lists) wait until this
    # many replicas of their master have them (WAIT), else fail and are retried: a master that
    # dies then cannot lose an acknowledged fan-out. 0: no WAIT (no replicas, local single Redis).
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 200
    active_days: int = 7
    fanout_chunk_size: int = 1_000
    # Follower ids read per keyset page while a fan-out head job plans its chunks.
    fanout_page_size: int = 10_000
    post_cache_ttl_seconds: int = 86_400
    # How long one store call may wait (connect, query, pool checkout) before the store counts
    # as unavailable: the API answers within ~2 s when a store is down or hung. Batch functions
    # (fan-out, scheduled jobs) set a longer one in template.yaml.
    store_timeout_ms: int = 800
    # Scheduled jobs. Prewarm: users seen within this many hours, at most this many per run
    # (most recently active first), each warmed for a first page of this size.
    prewarm_active_hours: int = 24
    prewarm_max_users: int = 20_000
    prewarm_page_size: int = 20
    # Cleanup. Raw engagement events are kept this many days, and dropped only once rolled up.
    engagement_retention_days: int = 7
    # Author lists (`ap:`) of authors who have not posted for this many days are dropped; a
    # reader rebuilds a missing list from MongoDB.
    author_list_silent_days: int = 30
    # Auth.
    jwt_issuer: str = "https://auth.feed.local"
    jwt_audience: str = "feed-api"
    jwt_jwks_url: str | None = None
    jwt_public_key_file: str | None = None
    cursor_secret: str = "local-dev-cursor-secret"
    # Snowflake worker id (0..1023); None picks a random one per process.
    id_worker: int | None = None
    # Monitoring. Scheduled jobs push each run's result here when set (locally `make up`
    # starts one); on AWS they publish EMF metrics only.
    pushgateway_url: str | None = None

    def feed_rules(self) -> FeedRules:
        # Imported here: the entry points read their settings at init, the rules are needed
        # only when the services are built (first request).
        from newsfeed.rules import FeedRules

        return FeedRules(
            celebrity_threshold=self.celebrity_threshold,
            celebrity_threshold_low=self.celebrity_threshold_low,
            active_days=self.active_days,
            fanout_chunk_size=self.fanout_chunk_size,
            fanout_page_size=self.fanout_page_size,
            prewarm_active_hours=self.prewarm_active_hours,
            prewarm_max_users=self.prewarm_max_users,
            prewarm_page_size=self.prewarm_page_size,
            engagement_retention_days=self.engagement_retention_days,
            author_list_silent_days=self.author_list_silent_days,
        )

    def _postgres_dsn(self, host: str, port: int) -> str:
        return (
            f"postgresql://{quote(self.postgres_user)}:{quote(self.postgres_password)}"
            f"@{host}:{port}/{quote(self.postgres_db)}"
        )

    @property
    def postgres_dsn(self) -> str:
        return self._postgres_dsn(self.postgres_host, self.postgres_port)

    @property
    def postgres_replica_dsn(self) -> str | None:
        """The read replica's DSN, None when there is none (POSTGRES_REPLICA_HOST empty)."""
        if not self.postgres_replica_host:
            return None
        return self._postgres_dsn(self.postgres_replica_host, self.postgres_replica_port)

    @property
    def media_url_base(self) -> str:
        """MEDIA_CDN_BASE, else the media bucket's S3 address (path-style on an emulator)."""
        if self.media_cdn_base:
            return self.media_cdn_base.rstrip("/")
        if self.aws_endpoint_url:
            return f"{self.aws_endpoint_url.rstrip('/')}/{self.media_bucket}"
        return f"https://{self.media_bucket}.s3.{self.aws_region}.amazonaws.com"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment-style names (POSTGRES_USER, REDIS_PORT, ...).

        An empty string counts as unset, so `AWS_ENDPOINT_URL=` means real AWS endpoints.
        """
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(field.name.upper())
            if raw is None:
                continue
            if field.type in ("bool", bool):
                values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif field.type in ("int", int) or (field.type == "int | None" and raw):
                try:
                    values[field.name] = int(raw)
                except ValueError as exc:
                    name = field.name.upper()
                    raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
            elif field.type in ("str | None", "int | None"):
                values[field.name] = raw or None
            else:
                values[field.name] = raw
        return cls(**values)  # type: ignore[arg-type]
