"""Copying a whole database into a new one (SQLite to PostgreSQL, typically), keeping every id.

The source is read in one snapshot; the target is written in ONE transaction: migrated, found
empty, filled table by table in chunks, its id sequences moved past every id the source ever gave
out, then committed. A copy that fails or is interrupted leaves the target as it was (empty or
not even migrated): running it again is the way to resume. Nothing is ever written to the source.

Sequences move past the source's own sequence position, not only past the largest id copied:
a node deleted from the source (nodes of a removed cluster, nodes a report left out) had an id
that must not be given out again (SPEC §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import fleet_counts
from models.engine import read_transaction, write_transaction
from models.migrations import migrate, require_current
from models.tables import api_tokens, clusters, nodes, service_keys

CHUNK_ROWS = 5_000
# Parents before children, so that every foreign key holds at every insert.
TABLES: tuple[Table, ...] = (api_tokens, clusters, nodes, service_keys)
SEQUENCED: tuple[Table, ...] = (api_tokens, clusters, nodes)


class CopyRefused(Exception):
    """The copy cannot start; nothing was written. The message says why."""


class CopyProgress(Protocol):
    """Told how far the copy is: the row counts first, then every chunk copied."""

    def start(self, totals: Mapping[str, int]) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...


class _Silent:
    def start(self, totals: Mapping[str, int]) -> None:
        pass

    def advance(self, table: str, rows: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class CopySummary:
    """Rows copied per table, and how many of the clusters are tombstones."""

    rows: Mapping[str, int]
    removed_clusters: int


async def copy_database(
    source: AsyncEngine,
    target: AsyncEngine,
    progress: CopyProgress | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> CopySummary:
    """Copy every row of `source` into the empty database `target` (see the module docstring).

    Raises `CopyRefused`, or `MigrationsPending` for a source whose schema is not current.
    """
    progress = progress or _Silent()
    if source.url == target.url:
        raise CopyRefused("the source and the target are the same database")
    await require_current(source)
    async with read_transaction(source) as src:
        totals = {t.name: await _count(src, t) for t in TABLES}
        removed = await _count(src, clusters, clusters.c.removed_at.is_not(None))
        issued = {t.name: await _sequence_position(src, t) for t in SEQUENCED}
        async with write_transaction(target) as dst:
            await dst.run_sync(migrate)
            await _require_empty(dst)
            progress.start(totals)
            for table in TABLES:
                last_id = await _copy_table(src, dst, table, chunk_rows, progress)
                if table in SEQUENCED:
                    await _advance_sequence(dst, table, max(issued[table.name], last_id))
            await fleet_counts.rebuild(dst)  # counted from the rows copied, not copied
    return CopySummary(rows=totals, removed_clusters=removed)


async def _count(conn: AsyncConnection, table: Table, *where: object) -> int:
    query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
    return int((await conn.execute(query)).scalar_one())


async def _require_empty(conn: AsyncConnection) -> None:
    held = {t.name: await _count(conn, t) for t in TABLES}
    if any(held.values()):
        rows = ", ".join(f"{name}: {n}" for name, n in held.items() if n)
        raise CopyRefused(
            f"the target database already holds rows ({rows}): copy only into an empty database"
        )


async def _copy_table(
    src: AsyncConnection,
    dst: AsyncConnection,
    table: Table,
    chunk_rows: int,
    progress: CopyProgress,
) -> int:
    """Copy `table` in primary-key order, `chunk_rows` per statement; the last id copied."""
    query = select(table).order_by(*table.primary_key.columns)
    result = await src.stream(query.execution_options(yield_per=chunk_rows))
    last_id = 0
    async for chunk in result.partitions(chunk_rows):
        rows = [dict(row._mapping) for row in chunk]
        await dst.execute(insert(table), rows)
        if "id" in table.c:
            last_id = int(rows[-1]["id"])
        progress.advance(table.name, len(rows))
    return last_id


async def _sequence_position(conn: AsyncConnection, table: Table) -> int:
    """The largest id `table`'s sequence has given out (0 when none)."""
    if conn.dialect.name == "sqlite":
        # AUTOINCREMENT keeps the largest id ever used in sqlite_sequence (made with the table).
        query = text("SELECT seq FROM sqlite_sequence WHERE name = :name")
        found = (await conn.execute(query, {"name": table.name})).scalar_one_or_none()
    else:
        query = text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:name, 'id')::regclass)")
        found = (await conn.execute(query, {"name": table.name})).scalar_one_or_none()
    return int(found or 0)


async def _advance_sequence(conn: AsyncConnection, table: Table, position: int) -> None:
    """Make the next id of `table` larger than `position` (and than what it was)."""
    position = max(position, await _sequence_position(conn, table))
    if position == 0:
        return
    if conn.dialect.name == "sqlite":
        params = {"name": table.name, "seq": position}
        updated = await conn.execute(
            text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :name"), params
        )
        if updated.rowcount == 0:
            await conn.execute(
                text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"), params
            )
    else:
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:name, 'id'), :seq, true)"),
            {"name": table.name, "seq": position},
        )
