"""The news-feed domain: timelines, fan-out, feed merge. Knows nothing of Lambda or HTTP."""
