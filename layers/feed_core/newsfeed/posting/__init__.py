"""Posts: create (idempotent), read, delete; likes; post bodies through the cache."""
