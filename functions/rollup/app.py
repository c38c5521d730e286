"""Lambda entry point of the analytics roll-up job (EventBridge schedule).

Rolls the engagement events stored since the last run into hourly and daily stats. A custom
schedule Input (or a manual invoke) `{"since": "2026-11-25T00:00:00Z"}` redoes the events
stored since then; the numbers come out the same, the roll-up being idempotent.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from feed_lambda.handlers import scheduled_handler
from feed_lambda.observability import observability
from feed_wiring.root import lazy_services
from feed_wiring.settings import Settings

if TYPE_CHECKING:
    from newsfeed.jobs.rollup import RollupReport

settings = Settings.from_env(os.environ)
obs = observability("rollup")
services = lazy_services(settings, obs.telemetry)


def run(event: dict[str, Any]) -> RollupReport:
    since = event.get("since")
    return services().rollup.run(
        since=datetime.fromisoformat(since) if isinstance(since, str) else None
    )


handler = scheduled_handler(obs, run, settings.pushgateway_url)
