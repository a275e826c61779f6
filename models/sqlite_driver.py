"""SQLite through aiosqlite with one trip to its thread per statement, not four.

aiosqlite runs every sqlite3 call in a thread of its own and hands back the result through the
event loop; SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute,
fetch the rows, close the cursor), each a wake-up of that thread and then of the loop. A page
runs five statements, so twenty round trips, about a fifth of the main thread's time for a small
page. This adapter runs the four as one function in aiosqlite's thread; what SQLAlchemy reads
afterwards (the rows, the description, the row count, the last row id) is what that function
kept. Server-side cursors, commits and rollbacks are SQLAlchemy's own.

It reads two internals of aiosqlite (`Connection._conn`, the sqlite3 connection, and
`Connection._execute`, which queues a function for the thread), as SQLAlchemy's adapter does
(`_tx`, `_thread`). `module()` checks that they are there and gives None otherwise: the engine
then uses SQLAlchemy's adapter unchanged.
"""

from __future__ import annotations

import collections
import inspect
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Outcome = tuple[Any, list[Any] | None, int, int | None]


def _run(raw: Any, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In aiosqlite's thread: the statement run on a new sqlite3 cursor, and what it left."""
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
        async with self._adapt_connection._execute_mutex:
            raw = self._connection._conn
            outcome = await self._connection._execute(_run, raw, operation, parameters, many)
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


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # (a subclass of it)


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
