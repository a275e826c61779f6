"""The engine: one per process, made by the app's lifespan, with the transaction modes we rely on.

SQLite: WAL (readers never block the writer), a busy timeout, `synchronous=FULL` so that an
acknowledged commit survives a crash or power loss, and the driver's own transaction handling
turned off so that we emit `BEGIN` ourselves: deferred for reads, `BEGIN IMMEDIATE` for writes
(with the driver's legacy handling concurrent read-then-write transactions lose updates; see
https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl).

PostgreSQL: a bounded pool whose connections are checked at checkout without a round trip
(asyncpg knows when the server closed a connection: `_replace_closed`), so that after a server
restart the dead ones are replaced instead of failing requests (a connection that dies silently
is caught by the first statement: `models.snapshot`, `models.retries`); connect and
statement timeouts, so that no request waits forever on a server that is gone. Reads are
REPEATABLE READ snapshots; writes run at READ COMMITTED and lock the rows they change
(`models.reports`, `models.removal`), and are retried whole when they lose a race
(`models.retries`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from models import sqlite_driver
from models.greenlets import run_sync

_WRITE = "clusterql_write"
_AFTER_COMMIT = "clusterql_after_commit"
KEPT_SNAPSHOTS = 4  # SQLite: snapshot connections kept checked out for the next (`open_snapshot`)
# An SQLite engine's attribute: the connections its snapshots keep (`open_snapshot`). On the
# engine rather than in a registry, so that an engine nobody disposes is still collected.
_KEPT = "_clusterql_kept_snapshots"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How the engine uses its database. The pool sizes and the connect timeout apply to
    PostgreSQL (SQLite connections are local files); `statement_timeout_s` to both: the longest
    a PostgreSQL statement may run, and the longest SQLite waits for the write lock.
    """

    pool_size: int = 10
    max_overflow: int = 5
    pool_timeout_s: float = 10.0  # waiting for a free connection of the pool
    connect_timeout_s: float = 5.0
    statement_timeout_s: float = 30.0
    pool_recycle_s: float = 1800.0  # replace connections older than this (idle-killing proxies)


def create_engine(url: str, options: EngineOptions | None = None, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` (`sqlite+aiosqlite:///file.db` or `postgresql+asyncpg://...`)."""
    options = options or EngineOptions()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _create_private(parsed.database)
    if parsed.get_backend_name() == "postgresql":
        kwargs = {**_postgresql_options(options), **kwargs}
    elif parsed.get_driver_name() == "aiosqlite" and (one_trip := sqlite_driver.module()):
        kwargs = {"module": one_trip, **kwargs}
    # JSON columns (a cluster's regions, on every row of a page) decoded by orjson, in an
    # eighth of the time `json.loads` takes on such short lists. Their texts passed the text rules
    # (no lone surrogate, which orjson would refuse).
    engine = create_async_engine(url, json_deserializer=orjson.loads, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms=round(options.statement_timeout_s * 1000))
        _keep_snapshots(engine)
    else:
        event.listen(engine.sync_engine.pool, "checkout", _replace_closed)
        event.listen(engine.sync_engine.pool, "connect", _jsonb_as_text)
    return engine


def _jsonb_as_text(dbapi_connection: Any, _record: Any) -> None:
    """JSONB read as its text and decoded by orjson itself, in C, where the codec SQLAlchemy's
    asyncpg dialect registers on each new connection (before this) reads the binary form and
    calls a Python function per value to strip its version byte, decode it and call that same
    orjson: one call per cluster of every page (a cluster's regions), about 5% of a page
    without nodes in a profile. The text is PostgreSQL's output of the same JSONB, and what is
    written still arrives as the JSON text SQLAlchemy's serializer made."""
    await_(
        dbapi_connection.driver_connection.set_type_codec(
            "jsonb", encoder=str, decoder=orjson.loads, schema="pg_catalog", format="text"
        )
    )


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection the server has closed: the pool then opens a new one.

    SQLAlchemy's `pool_pre_ping` would ask the server (BEGIN, a statement, ROLLBACK: three
    round trips per checkout); asyncpg already saw the server close the socket, for free.
    https://docs.sqlalchemy.org/en/20/core/pooling.html#custom-legacy-pessimistic-ping
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _create_private(path: str) -> None:
    """Create a new SQLite file readable by its owner only (it holds every cluster, the token
    digests and the key that signs cursors); SQLite gives its -wal and -shm files the same
    mode. An existing file keeps the mode its operator chose."""
    # An existing file, or a directory that does not exist (SQLite's own error says it best).
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _postgresql_options(options: EngineOptions) -> dict[str, Any]:
    # https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic
    # https://magicstack.github.io/asyncpg/current/api/index.html#asyncpg.connection.connect
    return {
        "pool_size": options.pool_size,
        "max_overflow": options.max_overflow,
        "pool_timeout": options.pool_timeout_s,
        "pool_recycle": options.pool_recycle_s,
        "connect_args": {
            "timeout": options.connect_timeout_s,
            "command_timeout": options.statement_timeout_s,
            "server_settings": {"application_name": "clusterql"},
        },
    }


def _switch_to_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Put the file in WAL mode (it stays so); wait for others doing it at the same moment.

    Switching takes an exclusive lock for which SQLite does not always call the busy handler:
    connections opening a new file together (processes starting at once) can get "database is
    locked" straight away. The mode is persistent, so an already switched file needs no lock.
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # in the driver's own thread, not the event loop


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        _switch_to_wal(cursor, busy_timeout_ms)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # may wait for the lock, and say why not
            return
        # A deferred BEGIN takes no lock and cannot fail on a live connection: our adapter
        # sends it with the transaction's first statement, where that statement runs (on the
        # loop's thread, or in its trip to aiosqlite's: `models.sqlite_driver`), and knows the
        # transaction for a read one; SQLAlchemy's own adapter gets it from
        # the driver's cursor, without SQLAlchemy's execution around it (one measurement:
        # BEGIN's share of a snapshot's checkout went from about 150 us of Python to about 50).
        dbapi_connection = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, sqlite_driver.OneTripConnection):
            dbapi_connection.defer_begin()
            return
        cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN")
        finally:
            cursor.close()


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction: takes SQLite's write lock up front, commits on success; then
    runs what `after_commit` registered in it (nothing if it rolled back)."""
    async with engine.connect() as conn:
        await for_writes(conn)
        callbacks: list[Callable[[], None]] = []
        conn.info[_AFTER_COMMIT] = callbacks  # `info` outlives checkouts: start clean
        try:
            async with conn.begin():
                yield conn
        except BaseException:
            # Not `conn.info` here: after a cancellation the connection is invalidated, and
            # touching it would reconnect outside SQLAlchemy's greenlet (MissingGreenlet).
            callbacks.clear()
            raise
        del conn.info[_AFTER_COMMIT]
        for callback in callbacks:
            callback()


def after_commit(conn: AsyncConnection, callback: Callable[[], None]) -> None:
    """Run `callback` once the write transaction `conn` is in has committed (`write_transaction`);
    never if it rolls back. It must not wait: the writer runs it before it returns."""
    callbacks = conn.info.get(_AFTER_COMMIT)
    if callbacks is None:
        raise RuntimeError("after_commit needs a transaction begun by write_transaction")
    callbacks.append(callback)


async def for_writes(conn: AsyncConnection) -> None:
    """Make `conn`'s next transaction a write one: on SQLite it begins `BEGIN IMMEDIATE`."""
    await conn.execution_options(**{_WRITE: True})


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One read-only transaction whose statements all see the same snapshot."""
    conn = await open_snapshot(engine)
    try:
        yield conn
    finally:
        await conn.close()  # closing rolls the transaction back


async def open_snapshot(engine: AsyncEngine) -> AsyncConnection:
    """A connection checked out of `engine`'s pool, in a transaction in which every statement
    reads one snapshot.

    SQLite in WAL mode: a deferred transaction keeps the snapshot of its first read.
    PostgreSQL: REPEATABLE READ takes the snapshot at the first statement.

    The checkout and the BEGIN are done in one pass into SQLAlchemy's greenlet, where its
    async `connect()` then `begin()` take two (three with PostgreSQL's isolation level), and on
    a kept greenlet (`models.greenlets`): every API request opens one (`models.snapshot`).

    On SQLite through `models.sqlite_driver`, a snapshot's connection is not given back to the
    pool when the snapshot ends but kept, checked out, for the next one (at most
    `KEPT_SNAPSHOTS`, the last kept first): its transaction is rolled back as the pool would
    have, and the next snapshot only begins one (a deferred BEGIN, sent with its first
    statement). SQLAlchemy's checkout (the pool, its events, a `Connection` and an
    `AsyncConnection`) cost a page without nodes 0.10 to 0.18 ms with the caches cold, measured
    in-process (interleaved A/B, the keeping toggled per request, three runs: 102 to 182 us).
    A kept SQLite connection is a file handle of this process: no server closes it or limits
    how long it lives, as on PostgreSQL, whose snapshots keep the pool's checkout and its
    checks. Kept connections count as checked out (`checked_out`), and `engine.dispose()`
    closes them."""
    kept = _kept(engine.sync_engine)
    if kept:
        conn = kept.pop()
        connection = conn.sync_connection
        assert connection is not None  # kept connected (`close_snapshot`)
        connection.begin()  # deferred by the adapter: nothing is sent (`_configure_sqlite`)
        return conn
    postgresql = engine.dialect.name == "postgresql"
    return AsyncConnection(engine, await run_sync(_begun, engine.sync_engine, postgresql))


async def close_snapshot(conn: AsyncConnection) -> None:
    """`conn.close()` of a connection `open_snapshot` gave: its transaction is rolled back and
    it goes back to the pool (or is kept for the next snapshot: `open_snapshot`), on a kept
    greenlet too."""
    connection = conn.sync_connection
    assert connection is not None  # `open_snapshot` hands out connected ones
    kept = _kept(connection.engine)
    if kept is not None and len(kept) < KEPT_SNAPSHOTS and _as_checked_out(connection):
        try:
            if connection.in_transaction():
                await run_sync(connection.rollback)
        except BaseException:
            await run_sync(connection.close)  # the pool's way with a connection that failed
            raise
        if len(kept) < KEPT_SNAPSHOTS:  # others may have been kept while it rolled back
            kept.append(conn)
            return
    await run_sync(connection.close)


def checked_out(engine: AsyncEngine) -> int:
    """How many of `engine`'s connections are in use: checked out of its pool, and not kept
    for the next snapshot (`open_snapshot`)."""
    pool_checked_out: int = engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
    return pool_checked_out - len(_kept(engine.sync_engine) or ())


def _kept(engine: Engine) -> list[AsyncConnection] | None:
    return engine.__dict__.get(_KEPT)


def _as_checked_out(connection: Connection) -> bool:
    """Whether `connection` is as `open_snapshot` checked it out: live, through the adapter
    whose BEGIN sends nothing, with the engine's execution options (none changed since)."""
    if connection.closed or connection.invalidated:
        return False
    return isinstance(connection.connection.dbapi_connection, sqlite_driver.OneTripConnection) and (
        connection.get_execution_options() is connection.engine.get_execution_options()
    )


def _keep_snapshots(engine: AsyncEngine) -> None:
    """Let `engine`'s snapshots keep their connections (`open_snapshot`) until it is disposed."""
    kept: list[AsyncConnection] = []
    engine.sync_engine.__dict__[_KEPT] = kept

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _close_kept(_engine: Engine) -> None:
        # The pool they came from was disposed already: they are closed outright (in the
        # greenlet of `AsyncEngine.dispose`), not put back into it.
        while kept:
            connection = kept.pop().sync_connection
            assert connection is not None
            connection.invalidate()
            connection.close()


def _begun(sync_engine: Engine, postgresql: bool) -> Connection:
    conn = sync_engine.connect()
    try:
        if postgresql:
            conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
    except BaseException:
        conn.close()
        raise
    return conn


async def ping(engine: AsyncEngine) -> None:
    """Run a trivial statement: raises if the database cannot be reached or used now."""
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")
