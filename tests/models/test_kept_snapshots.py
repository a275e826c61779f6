"""On SQLite, a snapshot's connection is kept checked out for the next snapshot (at most
`KEPT_SNAPSHOTS`), each snapshot still its own transaction; `engine.dispose()` closes them; on
PostgreSQL every snapshot's connection goes back to the pool (`models.engine.open_snapshot`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.engine import (
    KEPT_SNAPSHOTS,
    checked_out,
    close_snapshot,
    create_engine,
    open_snapshot,
    write_transaction,
)
from tests.databases import NewEngine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}")
    async with write_transaction(made) as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    yield made
    await made.dispose()


def _checkouts(engine: AsyncEngine) -> list[Any]:
    """Every checkout of `engine`'s pool from now on."""
    seen: list[Any] = []
    event.listen(engine.sync_engine.pool, "checkout", lambda *args: seen.append(args[0]))
    return seen


async def _count(conn: AsyncConnection) -> int:
    return int((await conn.execute(text("SELECT count(*) FROM t"))).scalar_one())


async def _insert(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES (1)"))


async def test_the_next_snapshot_takes_the_kept_connection_and_a_transaction_of_its_own(
    engine: AsyncEngine,
) -> None:
    first = await open_snapshot(engine)
    assert await _count(first) == 0
    await close_snapshot(first)
    assert checked_out(engine) == 0  # kept, not in use
    assert engine.sync_engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    checkouts = _checkouts(engine)
    await _insert(engine)  # a write's connection is the pool's
    written = len(checkouts)
    second = await open_snapshot(engine)
    assert second is first
    assert len(checkouts) == written  # no checkout for the snapshot
    assert second.in_transaction()
    assert await _count(second) == 1  # a new snapshot: it sees the write before it
    await _insert(engine)
    assert await _count(second) == 1  # and keeps its snapshot to its end
    await close_snapshot(second)
    third = await open_snapshot(engine)
    assert await _count(third) == 2
    await close_snapshot(third)


async def test_at_most_so_many_are_kept_the_others_go_back_to_the_pool(
    engine: AsyncEngine,
) -> None:
    at_once = [await open_snapshot(engine) for _ in range(KEPT_SNAPSHOTS + 2)]
    assert len({id(conn.sync_connection) for conn in at_once}) == KEPT_SNAPSHOTS + 2
    for conn in at_once:
        assert await _count(conn) == 0
    await asyncio.gather(*(close_snapshot(conn) for conn in at_once))
    assert checked_out(engine) == 0
    assert engine.sync_engine.pool.checkedout() == KEPT_SNAPSHOTS  # type: ignore[attr-defined]
    again = [await open_snapshot(engine) for _ in range(KEPT_SNAPSHOTS)]
    assert {id(conn) for conn in again} <= {id(conn) for conn in at_once}
    for conn in again:
        await close_snapshot(conn)


async def test_a_connection_not_as_it_was_checked_out_is_not_kept(engine: AsyncEngine) -> None:
    changed = await open_snapshot(engine)
    await changed.execution_options(logging_token="changed")
    await close_snapshot(changed)
    invalidated = await open_snapshot(engine)
    await invalidated.invalidate()
    await close_snapshot(invalidated)
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    fresh = await open_snapshot(engine)
    assert fresh is not changed
    assert fresh is not invalidated
    assert await _count(fresh) == 0
    await close_snapshot(fresh)


async def test_dispose_closes_the_kept_connections(tmp_path: Path) -> None:
    threads = threading.active_count()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'disposed.db'}")
    kept = [await open_snapshot(engine) for _ in range(2)]
    for conn in kept:
        await conn.execute(text("SELECT 1"))
        await close_snapshot(conn)
    assert threading.active_count() == threads + 2  # aiosqlite's thread per connection
    await engine.dispose()
    assert checked_out(engine) == 0
    assert all(conn.closed for conn in kept)
    for _ in range(100):  # each thread ends once it ran the close it was sent
        if threading.active_count() == threads:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() == threads
    # the engine still works after it was disposed, as SQLAlchemy's do
    again = await open_snapshot(engine)
    assert (await again.execute(text("SELECT 1"))).scalar_one() == 1
    await close_snapshot(again)
    await engine.dispose()


async def test_postgresql_snapshots_give_their_connections_back(new_engine: NewEngine) -> None:
    engine = await new_engine()
    conn = await open_snapshot(engine)
    await conn.execute(text("SELECT 1"))
    await close_snapshot(conn)
    expected = 1 if engine.dialect.name == "sqlite" else 0
    assert engine.sync_engine.pool.checkedout() == expected  # type: ignore[attr-defined]
    assert checked_out(engine) == 0
