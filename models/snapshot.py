"""A request's read snapshot: one connection and one transaction, shared safely by resolvers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.engine import begin_snapshot
from models.faults import is_unavailable

T = TypeVar("T")


class Snapshot:
    """Opened lazily on first use; closed (rolled back) once the operation is done.

    Resolvers of one request may run concurrently, and an `AsyncConnection` is not safe for
    concurrent use, so every use goes through one lock. Everything read through one snapshot
    agrees: counts, pages and nodes come from the same database state.
    """

    __slots__ = ("_conn", "_engine", "_lock")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self._lock:
            if self._conn is None:
                conn = await self._engine.connect()
                try:
                    await begin_snapshot(conn)
                except BaseException:
                    await conn.close()
                    raise
                self._conn = conn
            return await query(self._conn)

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.close()  # closing rolls the read transaction back
            except Exception as exc:
                # The connection died (the database went away): nothing to roll back, and the
                # pool has dropped it. The request already failed or succeeded on its own.
                if not is_unavailable(exc):
                    raise
