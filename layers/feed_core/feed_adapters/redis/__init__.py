"""Redis (ElastiCache): the timeline store and its client."""
