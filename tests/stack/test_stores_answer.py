"""Each local store answers and carries the project's schema (issue: local platform)."""

from __future__ import annotations

import psycopg
import pytest
import redis
from pymongo import MongoClient

from infra import init_db

pytestmark = pytest.mark.integration


def test_postgres_has_every_migration_recorded(settings):
    expected = [p.name for p in init_db.migration_files()]
    assert expected, "there should be at least one migration"
    with psycopg.connect(settings.postgres_dsn) as conn:
        rows = conn.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()
    recorded = [r[0] for r in rows]
    assert recorded == expected


def test_applying_migrations_twice_is_a_no_op(settings):
    assert init_db.apply_postgres_migrations(settings.postgres_dsn) == []
    with psycopg.connect(settings.postgres_dsn) as conn:
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert count == len(init_db.migration_files())


def test_changed_migration_is_refused(settings, tmp_path):
    for src in init_db.migration_files():
        (tmp_path / src.name).write_text(src.read_text())
    first = init_db.migration_files(tmp_path)[0]
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(SystemExit, match="changed after it was applied"):
        init_db.apply_postgres_migrations(settings.postgres_dsn, tmp_path)


def test_postgres_has_feed_tables(settings):
    with psycopg.connect(settings.postgres_dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert {"users", "follows", "blocks", "mutes"} <= tables


def test_redis_answers_with_compact_timeline_encoding(settings):
    client = redis.Redis(host=settings.redis_host, port=settings.redis_port, db=settings.redis_db)
    assert client.ping()
    # Capped timelines must stay listpacks for the memory target; our server is started so.
    limit = int(client.config_get("zset-max-listpack-entries")["zset-max-listpack-entries"])
    assert limit >= settings.timeline_max_len


def test_mongodb_answers_and_has_post_indexes(settings):
    client = MongoClient(settings.mongodb_url, serverSelectionTimeoutMS=3000)
    try:
        db = client[settings.mongodb_db]
        assert client.admin.command("ping")["ok"] == 1
        index_keys = [list(ix["key"].items()) for ix in db.posts.list_indexes()]
        assert [("author_id", 1), ("_id", -1)] in index_keys
    finally:
        client.close()
