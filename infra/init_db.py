#!/usr/bin/env python3
"""Apply the schema: ordered PostgreSQL migrations and MongoDB collections and indexes.

    python infra/init_db.py            uses the environment (POSTGRES_*, MONGODB_URL, MONGODB_DB)

PostgreSQL migrations are the files infra/migrations/postgres/NNNN_name.sql, applied in order,
each in its own transaction, and recorded in `schema_migrations`; an applied file is never run
again, and an applied file whose content changed is an error (write a new migration instead).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from feed_wiring.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

MIGRATIONS_DIR = ROOT / "infra" / "migrations" / "postgres"
# Any constant works; it serialises concurrent init runs (two deploys, parallel test sessions).
MIGRATION_LOCK_ID = 7_201_925


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = sorted(p for p in directory.glob("*.sql") if p.name[:4].isdigit())
    versions = [p.name.split("_", 1)[0] for p in files]
    if len(set(versions)) != len(versions):
        raise SystemExit(f"duplicate migration numbers in {directory}: {versions}")
    return files


def ensure_database(settings: Settings) -> None:
    """Create the target database when the server lets us (local cluster, test runs)."""
    admin = settings.postgres_dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.postgres_db,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.postgres_db)))


def apply_postgres_migrations(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                v: c
                for v, c in conn.execute(
                    "SELECT version, checksum FROM schema_migrations"
                ).fetchall()
            }
            for path in migration_files(directory):
                version = path.name.split("_", 1)[0]
                body = path.read_text()
                checksum = hashlib.sha256(body.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        raise SystemExit(f"migration {path.name} changed after it was applied")
                    continue
                with conn.transaction():
                    conn.execute(body)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (version, path.name, checksum),
                    )
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied_now


def ensure_mongo(settings: Settings) -> None:
    from pymongo import MongoClient

    from feed_adapters.mongo.database import ensure_indexes

    client: MongoClient = MongoClient(settings.mongodb_url, serverSelectionTimeoutMS=5000)
    try:
        ensure_indexes(client[settings.mongodb_db])
    finally:
        client.close()


def main() -> int:
    settings = Settings.from_env(os.environ)
    ensure_database(settings)
    applied = apply_postgres_migrations(settings.postgres_dsn)
    ensure_mongo(settings)
    where = f"postgres db {settings.postgres_db}, mongodb db {settings.mongodb_db}"
    print(
        f"[init_db] {where}: "
        + (f"applied {', '.join(applied)}" if applied else "schema up to date")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
