"""SQLite's statements take one trip to aiosqlite's thread each (`models.sqlite_driver`), and
answer as SQLAlchemy's own adapter does: rows, row counts, last row ids, errors, transactions."""

from __future__ import annotations

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
    """Every function sent to aiosqlite's thread, in order."""
    sent: list[Any] = []
    queue: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(fn)
        return await queue(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_the_engine_uses_the_one_trip_adapter(engine: AsyncEngine) -> None:
    assert isinstance(engine.dialect.dbapi, sqlite_driver.OneTripDBAPI)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, sqlite_driver.OneTripConnection)


async def test_a_statement_with_rows_is_one_trip(engine: AsyncEngine, trips: list[Any]) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')"))
    async with read_transaction(engine) as conn:
        before = len(trips)
        rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
        assert len(trips) - before == 1
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
        assert len(trips) - before == 1  # BEGIN and the statement, in one trip
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
        assert len(trips) - before == 1
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
