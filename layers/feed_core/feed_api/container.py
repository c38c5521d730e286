"""Store clients and services, built once per process and reused by every request.

Lambda keeps a process warm across invocations, so connection pools live here, at module level,
and are created on the first request that needs them (not at import: importing the function
module stays cheap, and a function that never touches a store never connects to it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from threading import Lock
from typing import TYPE_CHECKING, Any

from newsfeed.settings import Settings

if TYPE_CHECKING:
    from newsfeed.analytics import EngagementRollup, StatsService
    from newsfeed.cleanup import TimelineCleanup
    from newsfeed.prewarm import Prewarmer
    from newsfeed.services import FanoutService, FeedService, PostService, UserService


@dataclass(frozen=True, slots=True)
class Services:
    """What the HTTP layer, the fan-out worker and the scheduled jobs call."""

    users: UserService
    posts: PostService
    feed: FeedService
    fanout: FanoutService
    # Optional so that tests and tools can wire only what they call.
    stats: StatsService | None = None
    prewarm: Prewarmer | None = None
    cleanup: TimelineCleanup | None = None
    rollup: EngagementRollup | None = None


ServicesProvider = Callable[[], Services]

_built: dict[Settings, Services] = {}
_lock = Lock()


def build_services(settings: Settings, **adapters: Any) -> Services:
    """Create the store clients and wire the services (one call per process).

    `adapters` go to `newsfeed.services.build_services` (e.g. `queue=`); adapters not given are
    built from `settings` (SQS when FANOUT_QUEUE_URL is set, else fan-out runs inline).
    """
    # Imported here: the domain pulls in the database drivers (about 200 ms), which the first
    # request pays instead of every import of the function module.
    from newsfeed.services import build_services as build_domain_services

    domain = build_domain_services(settings, **adapters)
    return Services(
        users=domain.users,
        posts=domain.posts,
        feed=domain.feed,
        fanout=domain.fanout,
        stats=domain.stats,
        prewarm=domain.prewarm,
        cleanup=domain.cleanup,
        rollup=domain.rollup,
    )


def get_services(settings: Settings) -> Services:
    """The process-wide services for these settings, built on first use."""
    services = _built.get(settings)
    if services is None:
        with _lock:  # the dev server calls this from worker threads
            services = _built.get(settings)
            if services is None:
                services = build_services(settings)
                _built[settings] = services
    return services


def use_services(settings: Settings, services: Services) -> None:
    """Make `services` the process-wide instance for `settings` (tests, local tools)."""
    with _lock:
        _built[settings] = services


def lazy_services(settings: Settings) -> ServicesProvider:
    """A provider for `create_app`: nothing connects until the first request."""
    return partial(get_services, settings)
