"""SQLite through aiosqlite: a read transaction's statements on the event loop's own thread,
every other statement in one trip to aiosqlite's thread, not four.

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

**Reads without a trip.** Even one trip is a wake-up of aiosqlite's thread and then of the loop:
0.1 to 0.2 ms of a request's time on this project's machines, where the statements of a page
without nodes take about 0.5 ms in SQLite (measured: a page of 100 clusters without nodes went
from 1.8-1.9 ms to 1.4 ms in-process, three trips fewer). So a `SELECT` of a read transaction
(the engine's deferred ones, `defer_begin`), and the ROLLBACK that ends it, run right here on the
loop's thread, as sqlite3 itself would run them, when nothing of this connection is queued for or
running in aiosqlite's thread (a statement whose awaiter was cancelled may still be running
there: then the statement takes its trip, behind it). Such a statement never waits on the loop:
- for a lock: it runs with `busy_timeout` 0 (a read waits for a lock only when it takes its
  transaction's snapshot, in WAL mode, e.g. while another process checkpoints). The connection's
  own timeout is set back before the next function aiosqlite's thread runs, not after each read:
  a pooled connection that only reads pays for neither `PRAGMA` (two `sqlite3` calls a request,
  20 to 40 us with the caches cold, in-process A/B, REST page without nodes);
- for long: a progress handler interrupts it after `INLINE_BUDGET_S`.
Either way it raises before it returns a row, and runs again in aiosqlite's thread as any other
statement does, with the connection's own busy timeout, in the same transaction (an interrupted
`SELECT` leaves its transaction as it was). Writes, `executemany` and anything outside a read
transaction always take their trip: a write may wait for the lock as long as the timeout says.
The sqlite3 connection is opened with `check_same_thread=False` for this; it is never used by
two threads at once.
"""

from __future__ import annotations

import collections
import functools
import inspect
import sqlite3
import time
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

# How long a read may run on the loop's thread before it is interrupted and run again in
# aiosqlite's thread: the loop serves no one else meanwhile. A page's 2,000 nodes take about
# 4 ms; a statement longer than this costs the budget once more, at most.
INLINE_BUDGET_S = 0.02
_PROGRESS_EVERY = 1000  # SQLite virtual machine instructions between two looks at the clock
# What a read on the loop's thread gives up on, to run again in aiosqlite's thread: the lock
# it did not wait for (SQLITE_BUSY, SQLITE_LOCKED) or the budget (SQLITE_INTERRUPT).
_RUN_AGAIN = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT})


def _past(deadline: float) -> bool:
    return time.perf_counter() > deadline


@functools.lru_cache(maxsize=1024)
def _is_select(sql: str) -> bool:
    """Whether `sql` is a plain `SELECT` (the only statements a read runs on the loop)."""
    return sql.lstrip()[:6].upper() == "SELECT"


class _RunAgain(Exception):
    """A read on the loop's thread gave up before it read: it is to run in aiosqlite's."""


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
        read = None if many else operation
        outcome = await adapted.in_trip(_run, operation, parameters, many, read=read)
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
    __slots__ = (
        "_begin_deferred",
        "_busy_timeout_ms",
        "_busy_zero",
        "_finished",
        "_queued",
        "_reading",
    )
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # (a subclass of it)

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin_deferred = False
        self._reading = False  # in a read transaction (`defer_begin`), until it ends
        self._busy_timeout_ms: int | None = None  # the connection's own, read when needed
        # busy_timeout is 0 (set by a read on the loop's thread, left so for the next ones)
        self._busy_zero = False
        # Functions sent to aiosqlite's thread, and those it has finished: each counter has
        # one writer (the loop's thread, aiosqlite's), so equal counters say it is idle.
        # (A function aiosqlite refuses, its connection closed, stays counted as queued: a
        # closed connection reads nowhere.)
        self._queued = self._finished = 0

        def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self._queued += 1
            return type(connection)._execute(connection, self._finishing, fn, *args, **kwargs)

        connection._execute = counted  # every function aiosqlite itself sends, ours included

    def _finishing(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """In aiosqlite's thread: `fn`, with the connection's own busy timeout, then one more
        finished."""
        try:
            if self._busy_zero:
                self._connection._conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
                self._busy_zero = False
            return fn(*args, **kwargs)
        finally:
            self._finished += 1

    def _may_read_here(self) -> bool:
        """Whether a read of this transaction may run on the loop's thread now."""
        return (
            self._reading
            and self._queued == self._finished
            and self._connection._tx.empty()  # nor anything put there past `_execute`
        )

    def defer_begin(self) -> None:
        """Begin a deferred transaction with the next statement, where that runs: a read
        transaction, whose `SELECT`s and ROLLBACK may run on the loop's thread."""
        self._begin_deferred = True
        self._reading = True

    def _ended(self) -> None:
        self._begin_deferred = self._reading = False

    def _read_here(self, fn: Callable[..., T], raw: Any, begin: bool, args: Any) -> T:
        """`fn(raw, begin, *args)` on the loop's thread, never waiting for a lock, nor longer
        than `INLINE_BUDGET_S`; `_RunAgain` when it gave up for either."""
        if not self._busy_zero:
            if self._busy_timeout_ms is None:
                self._busy_timeout_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
            raw.execute("PRAGMA busy_timeout = 0")  # until aiosqlite's thread runs something
            self._busy_zero = True
        raw.set_progress_handler(
            functools.partial(_past, time.perf_counter() + INLINE_BUDGET_S), _PROGRESS_EVERY
        )
        try:
            return fn(raw, begin, *args)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _RUN_AGAIN:
                raise _RunAgain from exc
            raise
        finally:
            raw.set_progress_handler(None, 0)

    async def in_trip(self, fn: Callable[..., T], *args: Any, read: str | None = None) -> T:
        """`fn(sqlite3 connection, begin, *args)`, one at a time: in aiosqlite's thread, or on
        the loop's when `read` (the statement `fn` runs) is a `SELECT` of a read transaction and
        may run here (see the module's docstring). `begin` says to send the deferred `BEGIN`
        first (then it is no longer deferred)."""
        async with self._execute_mutex:
            raw = self._connection._conn
            begin, self._begin_deferred = self._begin_deferred, False
            try:
                if read is not None and _is_select(read) and self._may_read_here():
                    try:
                        return self._read_here(fn, raw, begin, args)
                    except _RunAgain:
                        begin = begin and not raw.in_transaction
                done: T = await self._connection._execute(fn, raw, begin, *args)
                return done
            except BaseException:
                if begin and not raw.in_transaction:
                    self._begin_deferred = True  # BEGIN itself did not run: still to send
                raise

    async def fetch_rows(self, sql: str, arguments: Sequence[Any]) -> list[Any] | None:
        """The rows of `sql` in this connection's transaction (begun now if deferred), by
        sqlite3 itself; None when no transaction is begun or deferred."""
        return await self.in_trip(_fetch, sql, arguments, read=sql)

    def cursor(self, server_side: bool = False) -> Any:
        if server_side and self._begin_deferred:
            # a server-side cursor's statement is aiosqlite's own, not a trip of ours
            await_(self.in_trip(_begin))
        return super().cursor(server_side)

    def rollback(self) -> None:
        here = self._may_read_here()  # a read transaction's end: nothing to wait for
        self._ended()
        if not here:
            super().rollback()
            return
        try:
            self._connection._conn.rollback()
        except Exception as error:
            self._handle_exception(error)

    def commit(self) -> None:
        self._ended()
        super().commit()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite module, whose connections make `OneTripCursor`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # opened in aiosqlite's thread, read on the loop's too (never by both at once)
        kw["check_same_thread"] = False
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
