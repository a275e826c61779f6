"""Statements the driver runs itself, in the caller's transaction, for the reads every page makes.

SQLAlchemy's execution of one statement (a greenlet, an execution context, a result, a Row and
type processors per row) costs about 90 us of Python on this hardware, where the driver's own
call costs about 25 us (aiosqlite's or asyncpg's). A page without nodes makes four statements,
so the reads of every page (the token lookup, its clusters, their count, their nodes) go to
the driver when they can:

- the SQL is SQLAlchemy's own, compiled once per statement and dialect (`driver_form`), with
  its parameters' values processed by their types' own bind processors; a statement whose
  parameters SQLAlchemy expands per call (`IN` lists) is not taken;
- rows come back as the driver made them; a `RowCodec` (`cluster_codec`, and the nodes' own in
  `models.clusters`) says how each stored value becomes what SQLAlchemy's result processing
  would have made of it;
- the driver runs it only inside the transaction SQLAlchemy began on that connection (the
  request's snapshot), sending that transaction's BEGIN first when the adapter has deferred it
  to the first statement (on SQLite with it, where it runs: `models.sqlite_driver`; asyncpg's,
  as SQLAlchemy's adapter would have sent it); otherwise, or when the driver fails, `fetch`
  answers None and the caller runs the statement through SQLAlchemy, which then fails the same
  way with its own translation of the error (an unavailable database stays a 503, a dead pooled
  connection is replaced).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, String
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from models import tables
from models.records import ClusterRecord, RowCodec
from models.sqlite_driver import OneTripConnection

FORMS_KEPT = 512  # compiled statements kept, per statement object and dialect
INSTANTS_KEPT = 16_384  # distinct stored timestamps whose datetime is kept
fromisoformat = datetime.fromisoformat
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class DriverForm:
    """A statement as its driver takes it: SQL, its positional parameters' names, the values
    the statement holds (processed) and the processors of those given per call."""

    sql: str
    names: tuple[str, ...]
    values: Mapping[str, Any]
    processors: Mapping[str, Callable[[Any], Any] | None]

    def arguments(self, given: Mapping[str, Any]) -> list[Any]:
        """The positional arguments with `given`'s values (named as in the statement)."""
        values = dict(self.values)
        for name, value in given.items():
            if name in self.processors:  # the others are not in this statement
                values[name] = _processed(self.processors[name], value)
        return [values[name] for name in self.names]


def _processed(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if process is None or value is None else process(value)


@functools.lru_cache(maxsize=FORMS_KEPT)
def driver_form(
    statement: ClauseElement, dialect: Dialect, given: tuple[str, ...] = ()
) -> DriverForm | None:
    """`statement` compiled for `dialect` with the parameters named `given` left to each call,
    or None when the driver cannot run it as it is (parameters expanded per call, or a
    dialect whose parameters are not positional). `statement` must be one object per SQL
    (cached by its maker): forms are kept by identity."""
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if (
        not compiled.positional
        or compiled.positiontup is None
        or compiled.post_compile_params
        or compiled.literal_execute_params
    ):
        return None
    names = tuple(compiled.positiontup)
    processors = {
        name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in set(names)
    }
    held = compiled.construct_params(dict.fromkeys(given)) or {}
    values = {
        name: _processed(processors[name], value)
        for name, value in held.items()
        if name not in given
    }
    per_call = {name: processors[name] for name in given if name in processors}
    return DriverForm(compiled.string, names, values, per_call)


async def fetch(conn: AsyncConnection, sql: str, arguments: Sequence[Any]) -> list[Any] | None:
    """The rows of `sql` run by `conn`'s driver in `conn`'s transaction; None when there is
    none begun at the driver's level yet (the statement would not see the snapshot; on SQLite
    our adapter's deferred `BEGIN` counts as begun, and goes with this statement), when the
    dialect is neither SQLite's nor PostgreSQL's, or when the driver failed (but for a
    statement past its timeout, which is raised)."""
    try:
        raw = conn.sync_connection.connection  # type: ignore[union-attr]
    except Exception:
        return None  # not connected, or invalidated: SQLAlchemy's way reconnects or says why
    driver = raw.driver_connection
    if driver is None:
        return None
    dialect = conn.dialect.name
    try:
        if isinstance(raw.dbapi_connection, OneTripConnection):
            found = await raw.dbapi_connection.fetch_rows(sql, arguments)  # None: no transaction
        elif dialect == "sqlite" and driver.in_transaction:
            found = await driver.execute_fetchall(sql, arguments)
        elif dialect == "postgresql" and (
            driver.is_in_transaction() or await _asyncpg_begun(conn, raw.dbapi_connection)
        ):
            found = await driver.fetch(sql, *arguments)
        else:
            return None
        return None if found is None else list(found)
    except TimeoutError:
        # asyncpg's statement timeout (it cancelled the statement): the caller's answer is a
        # 503, as through SQLAlchemy. Run again there, it would fail in an aborted transaction.
        raise
    except Exception:
        return None
    except BaseException:
        # Cancelled mid-statement or mid-BEGIN (a sibling field failed): SQLAlchemy would
        # invalidate its connection here, so must we, or the pool hands out one still busy.
        raw.invalidate(soft=True)
        if dialect == "postgresql":
            driver.terminate()
        raise


async def _asyncpg_begun(conn: AsyncConnection, adapted: Any) -> bool:
    """Whether SQLAlchemy's asyncpg adapter has begun `conn`'s transaction now: it begins it
    with the transaction's first statement, so when SQLAlchemy has begun one and the adapter
    has not sent its `BEGIN` yet, this sends it, as that statement would have (the isolation
    level and read-only mode are the adapter's). False when there is no transaction to begin,
    or when the adapter is not the one this was written against, or the BEGIN failed (then
    SQLAlchemy's own execution begins it and fails with its own translation: a dead pooled
    connection is found there and replaced)."""
    if not conn.in_transaction() or getattr(adapted, "_transaction", _ABSENT) is not None:
        return False
    start = getattr(adapted, "_start_transaction", None)
    mutex = getattr(adapted, "_execute_mutex", None)
    if start is None or mutex is None:
        return False
    async with mutex:
        if adapted._transaction is None:
            try:
                await start()
            except Exception:
                return False
    return adapted._transaction is not None


async def fetch_statement(
    conn: AsyncConnection, statement: ClauseElement, given: Mapping[str, Any] | None = None
) -> list[Any] | None:
    """`fetch` of `statement` (its `driver_form`) with the parameters `given`; None when the
    driver does not take it, as `fetch` says."""
    given = given or {}
    form = driver_form(statement, conn.dialect, tuple(given))
    return None if form is None else await fetch(conn, form.sql, form.arguments(given))


# --- what SQLAlchemy's result processing makes of stored values -----------------------------


@functools.lru_cache(maxsize=INSTANTS_KEPT)
def sqlite_instant(stored: str) -> datetime:
    """SQLAlchemy's text of a UTC instant (`2024-12-31 11:32:10.367653`), aware."""
    return fromisoformat(stored + "+00:00")


@functools.lru_cache(maxsize=INSTANTS_KEPT)
def naive_utc(stored: datetime) -> datetime:
    """asyncpg's naive UTC timestamp, aware."""
    return stored.replace(tzinfo=UTC)


INSTANTS: Mapping[str, Callable[[Any], datetime]] = {
    "sqlite": sqlite_instant,
    "postgresql": naive_utc,
}


def codec(
    dialect: str,
    make: Callable[[Sequence[Any]], Any],
    columns: Sequence[Column[Any]],
    instants: Iterable[str],
    others: Mapping[str, Callable[[Any], Any]] | None = None,
) -> RowCodec[Any]:
    """The codec of driver rows with `columns` (in order) of `dialect`: `instants` timestamps,
    `others` converted as they say, the rest as they are."""
    converts = {**dict.fromkeys(instants, INSTANTS[dialect]), **(others or {})}
    names = [column.name for column in columns]
    exact = {i: kind for i, c in enumerate(columns) if (kind := _exact(dialect, c)) is not None}
    return RowCodec([converts.get(name) for name in names], make, names, exact)


_ASYNCPG = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


def _exact(dialect: str, column: Column[Any]) -> str | None:
    """What PostgreSQL's typed NOT NULL columns guarantee of their values as asyncpg returns
    them (`records.EXACT`): the planned executor then checks nothing more of them. SQLite
    stores whatever it is given, whatever the column says, so it guarantees nothing; nor do
    JSON columns."""
    if dialect != "postgresql" or column.nullable:
        return None
    type_ = column.type.dialect_impl(_ASYNCPG)  # its variant for PostgreSQL, if it has one
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, JSON):
        return None
    if isinstance(type_, BigInteger):
        return "int"
    if isinstance(type_, Integer):
        return "int32"
    if isinstance(type_, Boolean):
        return "bool"
    if isinstance(type_, String):
        return "str"
    return "value"  # a timestamp: some datetime, converted (`INSTANTS`)


def _cluster_codec(dialect: str) -> RowCodec[ClusterRecord]:
    # JSON: SQLite's is text, decoded by orjson as the engine's json_deserializer does
    # (`models.engine`); asyncpg decodes JSONB itself, with the text codec `models.engine`
    # registers on each connection, which is that same orjson.
    json = {"regions": orjson.loads} if dialect == "sqlite" else {}
    instants = ("monitored_at", "controller_last_updated")
    columns = [tables.clusters.c[name] for name in ClusterRecord._fields]
    return codec(dialect, ClusterRecord._make, columns, instants, json)


CLUSTER_CODECS: Mapping[str, RowCodec[ClusterRecord]] = {
    dialect: _cluster_codec(dialect) for dialect in INSTANTS
}
