"""SQLite's statements take one trip to aiosqlite's thread each, and a read transaction's none
(`models.sqlite_driver`), and answer as SQLAlchemy's own adapter does: rows, row counts, last
row ids, errors, transactions. A read on the loop's thread never waits there: not for a lock,
not for long, not behind what aiosqlite's thread still runs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from models import sqlite_driver
from models.engine import create_engine, read_transaction, write_transaction


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    async with write_transaction(made) as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield made
    await made.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every function sent to aiosqlite's thread, in order (as the adapter's count of them
    wraps it: the function it runs)."""
    sent: list[Any] = []
    queue: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        wrapped = getattr(fn, "__func__", None) is sqlite_driver.OneTripConnection._finishing
        sent.append(args[0] if wrapped else fn)
        return await queue(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_the_engine_uses_the_one_trip_adapter(engine: AsyncEngine) -> None:
    assert isinstance(engine.dialect.dbapi, sqlite_driver.OneTripDBAPI)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, sqlite_driver.OneTripConnection)


async def test_a_statement_is_one_trip_and_a_read_transactions_none(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    async with write_transaction(engine) as conn:
        before = len(trips)
        await conn.execute(text("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')"))
        assert len(trips) - before == 1
        in_writer = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        assert len(trips) - before == 2  # a write transaction's reads take theirs too
    before = len(trips)
    async with read_transaction(engine) as conn:
        rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
    assert len(trips) == before  # BEGIN, the SELECT and the ROLLBACK ran on the loop's thread
    assert in_writer == 3
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c")]


async def test_row_counts_last_ids_and_many_rows(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('x')"))
        assert inserted.lastrowid == 1
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "y"}, {"v": "z"}])
        updated = await conn.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        result = await conn.execute(text("SELECT v FROM t ORDER BY id"))
        assert result.fetchone() == ("x",)
        assert result.fetchmany(1) == [("y!",)]
        assert result.fetchall() == [("z!",)]
    async with read_transaction(engine) as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3
        assert (await conn.execute(text("SELECT v FROM t WHERE id = 9"))).first() is None


async def test_errors_are_sqlalchemys_and_undo_the_transaction(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('kept')"))

    async def conflicting() -> None:
        async with write_transaction(engine) as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('lost')"))
            await conn.execute(text("INSERT INTO t (v) VALUES ('kept')"))

    async def missing_table() -> None:
        async with read_transaction(engine) as conn:
            await conn.execute(text("SELECT * FROM missing"))

    with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: t\.v"):
        await conflicting()
    with pytest.raises(OperationalError, match="no such table: missing"):
        await missing_table()
    async with read_transaction(engine) as conn:  # the pooled connection still works
        rows = (await conn.execute(text("SELECT v FROM t"))).scalars().all()
    assert rows == ["kept"]


async def test_other_aiosqlite_internals_fall_back_to_sqlalchemys_adapter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(aiosqlite.Connection, "_conn")
    assert sqlite_driver.module() is None
    made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    try:
        assert not isinstance(made.dialect.dbapi, sqlite_driver.OneTripDBAPI)
    finally:
        await made.dispose()


async def _in_transaction(conn: Any) -> bool:
    raw = await conn.get_raw_connection()
    return bool(raw.driver_connection._conn.in_transaction)


async def test_a_read_transactions_begin_goes_with_its_first_statement(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('before')"))
    async with read_transaction(engine) as conn:
        assert not await _in_transaction(conn)  # begun by SQLAlchemy, not yet by SQLite
        before = len(trips)
        first = (await conn.execute(text("SELECT v FROM t"))).scalars().all()
        assert len(trips) == before  # BEGIN and the statement, on the loop's thread
        assert await _in_transaction(conn)
        # a write committed meanwhile is not seen: the first statement read in the transaction
        async with write_transaction(engine) as other:
            await other.execute(text("INSERT INTO t (v) VALUES ('meanwhile')"))
        assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == first
    assert first == ["before"]


async def test_a_driver_read_begins_the_deferred_transaction_and_none_outside_one(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    async with engine.connect() as conn:  # no transaction: the driver's read would not see one
        raw = await conn.get_raw_connection()
        adapted = raw.dbapi_connection
        assert isinstance(adapted, sqlite_driver.OneTripConnection)
        assert await adapted.fetch_rows("SELECT count(*) FROM t", []) is None
    async with read_transaction(engine) as conn:
        raw = await conn.get_raw_connection()
        adapted = raw.dbapi_connection
        assert isinstance(adapted, sqlite_driver.OneTripConnection)
        before = len(trips)
        assert await adapted.fetch_rows("SELECT count(*) FROM t", []) == [(0,)]
        assert len(trips) == before
        assert await _in_transaction(conn)
        async with write_transaction(engine) as other:
            await other.execute(text("INSERT INTO t (v) VALUES ('meanwhile')"))
        assert await adapted.fetch_rows("SELECT count(*) FROM t", []) == [(0,)]


async def test_a_server_side_cursor_first_reads_in_the_transaction(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('a'), ('b')"))
    async with read_transaction(engine) as conn:
        result = await conn.stream(text("SELECT v FROM t ORDER BY id"))
        assert await _in_transaction(conn)
        async with write_transaction(engine) as other:
            await other.execute(text("INSERT INTO t (v) VALUES ('meanwhile')"))
        assert [v async for v in result.scalars()] == ["a", "b"]
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2


async def test_a_read_transaction_with_no_statement_leaves_nothing_deferred(
    engine: AsyncEngine,
) -> None:
    for _ in range(2):
        async with read_transaction(engine):
            pass  # rolled back before any statement: BEGIN was never sent
        # the pooled connection's next transaction is a write: BEGIN IMMEDIATE, and only it
        async with write_transaction(engine) as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"w{_}"})
    async with read_transaction(engine) as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2


async def _adapted(conn: Any) -> sqlite_driver.OneTripConnection:
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    assert isinstance(adapted, sqlite_driver.OneTripConnection)
    return adapted


async def test_a_long_read_is_interrupted_and_runs_again_in_the_thread_in_its_snapshot(
    engine: AsyncEngine, trips: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with write_transaction(engine) as conn:
        values = [{"v": f"value {n}"} for n in range(3000)]
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), values)
    long_read = text("SELECT sum(length(v)) FROM t")
    async with read_transaction(engine) as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3000
        async with write_transaction(engine) as other:  # not in the snapshot
            await other.execute(text("INSERT INTO t (v) VALUES ('meanwhile')"))
        before = len(trips)
        monkeypatch.setattr(sqlite_driver, "INLINE_BUDGET_S", 0.0)
        total = (await conn.execute(long_read)).scalar_one()
        assert trips[before:] == [sqlite_driver._run]  # given up here, run in the thread
        monkeypatch.undo()
        assert (await conn.execute(long_read)).scalar_one() == total
        assert len(trips) == before + 1  # within the budget: on the loop's thread
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3000
        raw = (await _adapted(conn))._connection._conn
        assert raw.in_transaction
    assert total == sum(len(v["v"]) for v in values)


async def test_the_busy_timeout_is_0_for_reads_on_the_loop_and_its_own_in_the_thread(
    tmp_path: Path, trips: list[Any]
) -> None:
    # set to 0 by the first read on the loop's thread, left so for the next reads, and set back
    # before aiosqlite's thread runs anything: a write waits for the lock as long as it says
    made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}")
    try:
        async with write_transaction(made) as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        for _ in range(2):
            async with read_transaction(made) as conn:
                before = len(trips)
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
                assert len(trips) == before  # on the loop's thread
                raw = (await _adapted(conn))._connection._conn
                assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        holder = sqlite3.connect(
            tmp_path / "busy.db", isolation_level=None, check_same_thread=False
        )
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held for 0.3 s
        release = threading.Timer(0.3, holder.rollback)
        release.start()
        try:
            started = time.monotonic()
            async with write_transaction(made) as conn:
                timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
                await conn.execute(text("INSERT INTO t (v) VALUES ('waited for')"))
            waited = time.monotonic() - started
        finally:
            release.join()
            holder.close()
        assert timeout == 30_000  # the engine's default statement timeout
        assert waited >= 0.2
        async with read_transaction(made) as conn:
            assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == ["waited for"]
    finally:
        await made.dispose()


async def test_a_locked_database_is_waited_for_in_the_thread_not_on_the_loop(
    tmp_path: Path, trips: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In WAL mode a read waits for a lock only in rare moments (another process recovering the
    # WAL, say); in rollback-journal mode whenever a writer commits: the file stays in that
    # mode here, so that another connection's exclusive lock really stops the read.
    monkeypatch.setattr("models.engine._switch_to_wal", lambda cursor, busy_timeout_ms: None)
    path = tmp_path / "journal.db"
    made = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with write_transaction(made) as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            await conn.execute(text("INSERT INTO t (v) VALUES ('kept')"))
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        threading.Timer(0.3, holder.rollback).start()
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(ticking())
        try:
            async with read_transaction(made) as conn:
                before = len(trips)
                started = time.monotonic()
                rows = (await conn.execute(text("SELECT v FROM t"))).scalars().all()
                waited = time.monotonic() - started
                assert trips[before:] == [sqlite_driver._run]
                raw = (await _adapted(conn))._connection._conn
                # the connection's own busy timeout is back, for the thread's statements
                assert raw.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        finally:
            ticker.cancel()
            holder.close()
        assert rows == ["kept"]
        assert waited >= 0.2
        assert ticks >= 5  # the loop ran on while the thread waited for the lock
    finally:
        await made.dispose()


async def test_a_read_waits_in_the_thread_behind_what_it_still_runs(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    async with read_transaction(engine) as conn:
        adapted = await _adapted(conn)
        # a function whose awaiter was cancelled still runs in aiosqlite's thread
        left = asyncio.create_task(adapted._connection._execute(time.sleep, 0.3))
        await asyncio.sleep(0.05)
        left.cancel()
        started = time.monotonic()
        before = len(trips)
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        assert trips[before:] == [sqlite_driver._run]  # behind it, not beside it
        assert time.monotonic() - started >= 0.2
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        assert len(trips) == before + 1  # the thread idle again: on the loop's thread
