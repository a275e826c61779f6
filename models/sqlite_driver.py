"""SQLite through aiosqlite with one trip to its thread per statement, not four.

aiosqlite runs every sqlite3 call in a thread of its own and hands back the result through the
event loop; SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute,
fetch the rows, close the cursor), each a wake-up of that thread and then of the loop. A page
runs five statements, so twenty round trips, about a fifth of the main thread's time for a small
page. This adapter runs the four as one function in aiosqlite's thread; what SQLAlchemy reads
afterwards (the rows, the description, the row count, the last row id) is what that function
kept. Server-side cursors, commits and rollbacks are SQLAlchemy's own.

A read transaction's deferred `BEGIN` takes no trip of its own either: the engine's begin event
(`models.engine`) asks the connection to `defer_begin()`, and the transaction's first statement
sends `BEGIN` in its own trip, just before it runs. SQLite takes a deferred transaction's
snapshot at its first read anyway, so what the transaction sees is the same; a write
transaction's `BEGIN IMMEDIATE` is sent at once, as it may wait for the lock. `fetch_rows` is
the driver-level read of `models.driver_statements`, on the same terms.

It reads two internals of aiosqlite (`Connection._conn`, the sqlite3 connection, and
`Connection._execute`, which queues a function for the thread), as SQLAlchemy's adapter does
(`_tx`, `_thread`). `module()` checks that they are there and gives None otherwise: the engine
then uses SQLAlchemy's adapter unchanged.
"""

from __future__ import annotations

import collections
import inspect
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT, await_

_Outcome = tuple[Any, list[Any] | None, int, int | None]
T = TypeVar("T")


def _begin(raw: Any, begin: bool) -> None:
    """In aiosqlite's thread: the deferred `BEGIN`, if it is still to send."""
    if begin:
        raw.execute("BEGIN")


def _run(raw: Any, begin: bool, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In aiosqlite's thread: the statement run on a new sqlite3 cursor (after a `BEGIN` if
    `begin`), and what it left."""
    _begin(raw, begin)
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one call into aiosqlite's thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened here (that was a trip of its own): `_run` opens one.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        adapted = self._adapt_connection
        assert isinstance(adapted, OneTripConnection)
        outcome = await adapted.in_trip(_run, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows or ())

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._trip(operation, seq_of_parameters, True)

    async def _async_soft_close(self) -> None:
        return None  # nothing is open: the rows are kept, the sqlite3 cursor closed

    def close(self) -> None:
        self._rows.clear()


def _fetch(raw: Any, begin: bool, sql: str, arguments: Sequence[Any]) -> list[Any] | None:
    """In aiosqlite's thread: the rows of `sql` (after a `BEGIN` if `begin`); None outside a
    transaction, where they would not be the snapshot's."""
    if not begin and not raw.in_transaction:
        return None
    _begin(raw, begin)
    return raw.execute(sql, arguments).fetchall()  # type: ignore[no-any-return]


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin_deferred",)
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # (a subclass of it)

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin_deferred = False

    def defer_begin(self) -> None:
        """Begin a deferred transaction with the next statement, in its trip."""
        self._begin_deferred = True

    async def in_trip(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sqlite3 connection, begin, *args)` in aiosqlite's thread, one at a time; `begin`
        says to send the deferred `BEGIN` first (then it is no longer deferred)."""
        async with self._execute_mutex:
            raw = self._connection._conn
            begin, self._begin_deferred = self._begin_deferred, False
            try:
                done: T = await self._connection._execute(fn, raw, begin, *args)
                return done
            except BaseException:
                if begin and not raw.in_transaction:
                    self._begin_deferred = True  # BEGIN itself did not run: still to send
                raise

    async def fetch_rows(self, sql: str, arguments: Sequence[Any]) -> list[Any] | None:
        """The rows of `sql` in this connection's transaction (begun now if deferred), by
        sqlite3 itself; None when no transaction is begun or deferred."""
        return await self.in_trip(_fetch, sql, arguments)

    def cursor(self, server_side: bool = False) -> Any:
        if server_side and self._begin_deferred:
            # a server-side cursor's statement is aiosqlite's own, not a trip of ours
            await_(self.in_trip(_begin))
        return super().cursor(server_side)

    def rollback(self) -> None:
        self._begin_deferred = False
        super().rollback()

    def commit(self) -> None:
        self._begin_deferred = False
        super().commit()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite module, whose connections make `OneTripCursor`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        made = super().connect(*arg, **kw)
        return OneTripConnection(self, made._connection)


def module() -> OneTripDBAPI | None:
    """The DBAPI module for `create_async_engine(module=...)`, or None when aiosqlite's
    internals are not the ones this adapter reads (then SQLAlchemy's adapter is used)."""
    import aiosqlite

    execute = getattr(aiosqlite.Connection, "_execute", None)
    if not inspect.iscoroutinefunction(execute):
        return None
    if not isinstance(getattr(aiosqlite.Connection, "_conn", None), property):
        return None
    return OneTripDBAPI(aiosqlite, sqlite3)
