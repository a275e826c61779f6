"""A request's read snapshot: one connection and one transaction, shared safely by resolvers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.engine import close_snapshot, open_snapshot
from models.faults import is_unavailable

T = TypeVar("T")
log = logging.getLogger("clusterql.models")


class SnapshotClosed(RuntimeError):
    """A read after the request's answer was complete."""


class Snapshot:
    """Opened lazily on first use; closed (rolled back) once the request is done.

    The first use is the token lookup (`clusterql.auth`), so that the caller's token and the
    data it reads come from one connection checkout and one transaction. Resolvers of one
    request may run concurrently, and an `AsyncConnection` is not safe for concurrent use, so
    every use goes through one lock. Everything read through one snapshot agrees: counts, pages
    and nodes come from the same database state.

    A pooled connection that died while idle (a database restart, `pg_terminate_backend`) is
    found when the transaction's first statement fails on it: nothing was read yet, so the
    statement runs again once on a new connection and the caller sees nothing of it.

    `owner_closes`: whoever made the snapshot closes it once the answer is sent (the API gate,
    `clusterql.api_gate`), and an operation's end only seals it (`answered`). The answer then
    does not wait for the ROLLBACK: a trip to the PostgreSQL server (or to SQLite's thread, when
    the read could not end on the loop's: `models.sqlite_driver`), 0.3 to 0.35 ms of a page
    without nodes in-process. uvicorn reads a keep-alive connection's next
    request as soon as an answer is complete, so a client waits for that ROLLBACK nowhere.
    """

    __slots__ = ("_closed", "_conn", "_engine", "_lock", "_owner_closes")

    def __init__(self, engine: AsyncEngine, *, owner_closes: bool = False) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._owner_closes = owner_closes

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def run(self, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self._lock:
            if self._closed:
                # Work an answered operation left behind (a DataLoader batch whose results
                # nobody awaits any more): it must not check a connection out again.
                raise SnapshotClosed("the request's snapshot is closed: its answer is sent")
            if self._conn is not None:
                return await query(self._conn)
            try:
                return await self._open(query)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                log.info("a pooled connection was dead: reading again on a new one")
                return await self._open(query)

    async def _open(self, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        conn = await open_snapshot(self._engine)
        try:
            result = await query(conn)
        except BaseException:
            await _discard(conn)
            raise
        self._conn = conn
        return result

    async def restart(self) -> None:
        """End the snapshot's transaction; the next use begins a new one (after a write, to
        read what it wrote)."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await _discard(conn)

    async def answered(self) -> None:
        """The operation reading it is answered: later uses are refused (work it left behind
        must not read on). Its connection goes back now, or when its owner closes it."""
        if self._owner_closes:
            self._closed = True
        else:
            await self.close()

    async def close(self) -> None:
        """End the snapshot for good: the connection goes back, and later uses are refused."""
        async with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                await _discard(conn)


async def _discard(conn: AsyncConnection) -> None:
    try:
        await close_snapshot(conn)  # closing rolls the read transaction back
    except Exception as exc:
        # The connection died (the database went away): nothing to roll back, and the pool has
        # dropped it. The request already failed or succeeded on its own.
        if not is_unavailable(exc):
            raise
