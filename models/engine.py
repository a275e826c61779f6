"""The engine: one per process, made by the app's lifespan, with the transaction modes we rely on.

SQLite: WAL (readers never block the writer), a busy timeout, `synchronous=FULL` so that an
acknowledged commit survives a crash or power loss, and the driver's own transaction handling
turned off so that we emit `BEGIN` ourselves: deferred for reads, `BEGIN IMMEDIATE` for writes
(with the driver's legacy handling concurrent read-then-write transactions lose updates; see
https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

BUSY_TIMEOUT_MS = 30_000
_WRITE = "clusterql_write"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` (`sqlite+aiosqlite:///file.db` or `postgresql+asyncpg://...`)."""
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


async def create_schema(engine: AsyncEngine) -> None:
    """Apply the pending schema migrations (idempotent); see `models.migrations.upgrade`."""
    from models.migrations import upgrade  # imported here: models.migrations imports this module

    await upgrade(engine)


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction: takes SQLite's write lock up front, commits on success."""
    async with engine.connect() as conn:
        await conn.execution_options(**{_WRITE: True})
        async with conn.begin():
            yield conn


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One read-only transaction whose statements all see the same snapshot."""
    async with engine.connect() as conn:
        await begin_snapshot(conn)
        try:
            yield conn
        finally:
            await conn.rollback()


async def begin_snapshot(conn: AsyncConnection) -> None:
    """Begin a transaction in which every statement reads one snapshot.

    SQLite in WAL mode: a deferred transaction keeps the snapshot of its first read.
    PostgreSQL: REPEATABLE READ takes the snapshot at the first statement.
    """
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="REPEATABLE READ")
    await conn.begin()
