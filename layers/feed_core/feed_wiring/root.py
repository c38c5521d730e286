"""The one composition root: builds the store adapters from the settings and wires every
service of the domain with them, once per process.

Lambda keeps a process warm across invocations, so the store clients live here, at module
level, built on the first request that needs them and not at import: importing a function's
module stays cheap (no driver is imported), and a function that never touches a store never
connects to it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from threading import Lock
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from newsfeed.fanout.handler import FanoutJobHandler
    from newsfeed.feed.manager import FeedManager
    from newsfeed.feed.reader import HomeFeed
    from newsfeed.ids import IdGenerator
    from newsfeed.jobs.cleanup import TimelineCleanup
    from newsfeed.jobs.impressions import DrainReport, ImpressionDrain
    from newsfeed.jobs.prewarm import Prewarmer
    from newsfeed.jobs.repair import PendingRepair
    from newsfeed.jobs.rollup import EngagementRollup, EngagementStore
    from newsfeed.jobs.stats import StatsService
    from newsfeed.media.processing import MediaProcessor
    from newsfeed.media.service import MediaService
    from newsfeed.ports import (
        FanoutQueue,
        GraphStore,
        MediaObjects,
        MediaStore,
        PostStore,
        TimelineStore,
        UploadSigner,
    )
    from newsfeed.posting.likes import LikeService
    from newsfeed.posting.service import PostService
    from newsfeed.social.graph import SocialGraphService
    from newsfeed.social.profiles import ProfileService
    from newsfeed.telemetry import Telemetry


@dataclass(frozen=True, slots=True)
class Services:
    """What the HTTP layer, the fan-out worker and the scheduled jobs call."""

    profiles: ProfileService
    social: SocialGraphService
    posts: PostService
    likes: LikeService
    feed: HomeFeed
    fanout: FanoutJobHandler
    stats: StatsService
    prewarm: Prewarmer
    cleanup: TimelineCleanup
    rollup: EngagementRollup
    repair: PendingRepair
    impressions: ImpressionDrain
    media: MediaService
    # The media function's: built on first use, so that only it imports Pillow.
    media_processing: Callable[[], MediaProcessor]
    # The feed policy and the timeline store, for tools and tests that inspect timelines.
    feeds: FeedManager
    timelines: TimelineStore
    # Where the domain and the adapters measure (newsfeed.telemetry).
    telemetry: Telemetry


ServicesProvider = Callable[[], Services]


def build_services(
    settings: Settings,
    *,
    graph: GraphStore | None = None,
    posts: PostStore | None = None,
    engagement: EngagementStore | None = None,
    timelines: TimelineStore | None = None,
    redis_client: Any = None,
    queue: FanoutQueue | None = None,
    media: MediaStore | None = None,
    uploads: UploadSigner | None = None,
    media_objects: MediaObjects | None = None,
    ids: IdGenerator | None = None,
    telemetry: Telemetry | None = None,
) -> Services:
    """Wire the services. Adapters not given are built from `settings`: the PostgreSQL pool,
    the MongoDB database, the Redis client, the SQS queue (FANOUT_QUEUE_URL) and the media
    bucket's signer (MEDIA_BUCKET). `telemetry`
    (none by default) is where the domain and the adapters it builds measure."""
    # Imported here, not at module level: the domain and the drivers cost about 200 ms, which
    # the first request pays instead of every import of a function module.
    from newsfeed.cursor import CursorCodec
    from newsfeed.engagement import EngagementEvents
    from newsfeed.fanout.handler import FanoutJobHandler
    from newsfeed.feed.manager import FeedManager
    from newsfeed.feed.reader import HomeFeed
    from newsfeed.ids import IdGenerator
    from newsfeed.jobs.cleanup import TimelineCleanup
    from newsfeed.jobs.impressions import ImpressionDrain
    from newsfeed.jobs.prewarm import Prewarmer
    from newsfeed.jobs.repair import PendingRepair
    from newsfeed.jobs.retention import EventRetention
    from newsfeed.jobs.rollup import EngagementRollup
    from newsfeed.jobs.stats import StatsService
    from newsfeed.media.service import MediaService
    from newsfeed.posting.bodies import PostBodies
    from newsfeed.posting.likes import LikeService
    from newsfeed.posting.service import PostService
    from newsfeed.social.graph import SocialGraphService
    from newsfeed.social.profiles import ProfileService
    from newsfeed.telemetry import NO_TELEMETRY

    telemetry = telemetry or NO_TELEMETRY
    replica_dsn = settings.postgres_replica_dsn
    if redis_client is None and (timelines is None or (graph is None and replica_dsn)):
        from feed_adapters.redis.client import make_redis

        redis_client = make_redis(
            settings.redis_host,
            settings.redis_port,
            settings.redis_db,
            timeout_ms=settings.store_timeout_ms,
            cluster=settings.redis_cluster,
        )
    if graph is None:
        from feed_adapters.postgres.graph_store import PostgresGraphStore, make_pool

        pool_args: dict[str, Any] = {
            "wait_seconds": settings.store_timeout_ms / 1000,
            # The server gives up first (a clean error), the watchdog only if it is hung.
            "statement_timeout_ms": settings.store_timeout_ms * 9 // 10,
        }
        graph = PostgresGraphStore(
            make_pool(settings.postgres_dsn, **pool_args),
            query_timeout_ms=settings.store_timeout_ms,
            telemetry=telemetry,
            # The reads that tolerate lag, while it is healthy and caught up.
            replica_pool=make_pool(replica_dsn, name="feed-replica", **pool_args)
            if replica_dsn
            else None,
            replica_max_lag_ms=settings.replica_max_lag_ms,
            replica_check_ms=settings.replica_check_ms,
            # Read-your-writes across processes (the social function's follow, the feed
            # function's next read): the pins in Redis too.
            shared_pins=_write_pins(redis_client) if replica_dsn else None,
        )
    if posts is None or engagement is None or media is None:
        from feed_adapters.mongo.database import make_database
        from feed_adapters.mongo.engagement_store import MongoEngagementStore
        from feed_adapters.mongo.media_store import MongoMediaStore
        from feed_adapters.mongo.post_store import MongoPostStore
        from feed_adapters.translate import StoreBreaker

        # A given post store's database serves the others too (one client, one pool).
        db = getattr(posts, "database", None)
        if db is None:  # (a pymongo Database has no truth value)
            db = make_database(settings.mongodb_url, settings.mongodb_db, settings.store_timeout_ms)
        # One breaker per server.
        breaker = getattr(posts, "breaker", None) or StoreBreaker("mongodb", telemetry)
        posts = posts or MongoPostStore(db, breaker)
        engagement = engagement or MongoEngagementStore(db, breaker)
        media = media or MongoMediaStore(db, breaker)
    if uploads is None:
        # Builds no client: boto3 is imported on the first upload signed (adapter docstring).
        from feed_adapters.s3.upload_signer import S3UploadSigner

        uploads = S3UploadSigner(
            settings.media_bucket,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )
    if media_objects is None:
        from feed_adapters.s3.media_objects import S3MediaObjects

        media_objects = S3MediaObjects(
            settings.media_bucket,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )
    if timelines is None:
        from feed_adapters.redis.timeline_store import RedisTimelineStore

        timelines = RedisTimelineStore(
            redis_client,
            max_len=settings.timeline_max_len,
            post_ttl_seconds=settings.post_cache_ttl_seconds,
            trim_slack=settings.timeline_trim_slack,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_ms=settings.redis_wait_timeout_ms,
            telemetry=telemetry,
        )
    if queue is None and not settings.fanout_queue_url:
        queue = _NoFanoutQueue()
    if queue is None:
        from feed_adapters.sqs.fanout_queue import SqsFanoutQueue

        queue = SqsFanoutQueue(
            settings.fanout_queue_url,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            timeout_ms=settings.store_timeout_ms,
            telemetry=telemetry,
        )
    rules = settings.feed_rules()
    ids = ids or IdGenerator(settings.id_worker)
    cursors = CursorCodec(settings.cursor_secret)
    events = EngagementEvents(engagement, timelines)
    feeds = FeedManager(timelines, posts, graph, active_days=rules.active_days, telemetry=telemetry)
    bodies = PostBodies(posts, timelines, telemetry=telemetry)
    feed = HomeFeed(
        graph,
        posts,
        timelines,
        feeds,
        bodies,
        cursors,
        events,
        active_days=rules.active_days,
        telemetry=telemetry,
    )
    post_store = posts
    drain = ImpressionDrain(timelines, engagement)

    def post_exists(post_id: int) -> bool:
        post = post_store.get_post(post_id)
        return post is not None and not post.is_deleted

    def post_stored(post_id: int) -> bool:
        return post_store.get_post(post_id) is not None

    cdn = None
    if settings.media_cdn_distribution_id:
        from feed_adapters.cloudfront.invalidations import CloudFrontInvalidations

        cdn = CloudFrontInvalidations(
            settings.media_cdn_distribution_id,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )
    media_service = MediaService(
        media,
        uploads,
        ids,
        max_bytes=settings.media_max_bytes,
        upload_seconds=settings.media_upload_seconds,
        objects=media_objects,
        cdn_base=settings.media_url_base,
        post_exists=post_stored,
        cdn=cdn,
    )
    media_store, objects = media, media_objects

    def media_processing() -> MediaProcessor:
        from feed_adapters.images.pillow_renderer import PillowRenderer
        from newsfeed.media.processing import ImageLimits, MediaProcessor

        return MediaProcessor(
            media_store,
            objects,
            PillowRenderer(),
            max_bytes=settings.media_max_bytes,
            limits=ImageLimits(
                max_pixels=settings.media_max_pixels,
                max_frames=settings.media_max_frames,
                max_animation_pixels=settings.media_max_animation_pixels,
            ),
            telemetry=telemetry,
        )

    return Services(
        profiles=ProfileService(graph, timelines, cursors, ids),
        social=SocialGraphService(graph, feeds, queue, events, threshold=rules.threshold),
        posts=PostService(
            graph, posts, bodies, feeds, queue, cursors, ids, events, media=media_service
        ),
        likes=LikeService(graph, posts, bodies, queue, events),
        feed=feed,
        fanout=FanoutJobHandler(
            graph,
            posts,
            feeds,
            queue,
            timelines,
            active_days=rules.active_days,
            chunk_size=rules.fanout_chunk_size,
            page_size=rules.fanout_page_size,
            telemetry=telemetry,
            media=media_service,
        ),
        stats=StatsService(engagement, post_exists, graph.user_exists),
        prewarm=Prewarmer(
            graph,
            timelines,
            feed,
            active_hours=rules.prewarm_active_hours,
            max_users=rules.prewarm_max_users,
            page_size=rules.prewarm_page_size,
        ),
        cleanup=TimelineCleanup(
            graph,
            timelines,
            active_days=rules.active_days,
            claims=posts,
            events=EventRetention(engagement, days=rules.engagement_retention_days),
            author_list_silent_days=rules.author_list_silent_days,
            media=media_service,
        ),
        rollup=EngagementRollup(engagement, drain_buffer=lambda: _drained(drain.run())),
        impressions=drain,
        media=media_service,
        media_processing=functools.cache(media_processing),
        repair=PendingRepair(posts, graph, queue),
        feeds=feeds,
        timelines=timelines,
        telemetry=telemetry,
    )


def _drained(report: DrainReport) -> int:
    return report.impressions + report.buffered_events


class _NoFanoutQueue:
    """Stands in when FANOUT_QUEUE_URL is not set: reads and scheduled jobs need no queue, and
    what would enqueue answers 503 saying why instead of failing at start-up."""

    def send(self, jobs: Any) -> None:
        from newsfeed.errors import QueueUnavailable

        raise QueueUnavailable(
            "no fan-out queue is configured (FANOUT_QUEUE_URL); locally `make up` creates one"
        )


_built: dict[Settings, Services] = {}
_lock = Lock()


def get_services(settings: Settings, telemetry: Telemetry | None = None) -> Services:
    """The process-wide services for these settings, built on first use (measuring into
    `telemetry`, the process's: EMF on Lambda, Prometheus in the dev server)."""
    services = _built.get(settings)
    if services is None:
        with _lock:  # the dev server calls this from worker threads
            services = _built.get(settings)
            if services is None:
                services = build_services(settings, telemetry=telemetry)
                _built[settings] = services
    return services


def use_services(settings: Settings, services: Services) -> None:
    """Make `services` the process-wide instance for `settings` (tests, local tools)."""
    with _lock:
        _built[settings] = services


def lazy_services(settings: Settings, telemetry: Telemetry | None = None) -> ServicesProvider:
    """A provider for the HTTP app and the jobs: nothing connects until the first call."""
    return partial(get_services, settings, telemetry)


def _write_pins(client: Any) -> Any:
    from feed_adapters.redis.write_pins import RedisWritePins

    return RedisWritePins(client)
