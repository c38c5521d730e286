"""The scheduled jobs: prewarm, timeline cleanup, engagement roll-up; and the stats it feeds."""
