"""Telling an unavailable database and a lost race from a bug, and retrying lost races.

The exceptions are built the way SQLAlchemy's asyncpg dialect chains them (SQLAlchemy's wrapper,
whose `orig` is the dialect's error, caused by asyncpg's own); real failures on real servers are
in tests/clusterql/test_unavailable.py and test_postgres_faults.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg.exceptions as pg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from models import retries
from models.faults import is_unavailable, is_write_conflict, sqlstate
from models.reports import REGISTER_RACE_INDEX


class _DialectError(Exception):
    """Like SQLAlchemy's `AsyncAdapt_asyncpg_dbapi.Error`: copies the SQLSTATE of its cause."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.sqlstate = getattr(cause, "sqlstate", None)
        self.__cause__ = cause


def _wrapped(
    cause: BaseException, kind: type[DBAPIError] = DBAPIError, invalidated: bool = False
) -> DBAPIError:
    error = kind("SELECT 1", {}, _DialectError(cause), connection_invalidated=invalidated)
    error.__cause__ = error.orig
    return error


def _unique_violation(index: str) -> DBAPIError:
    cause = pg.UniqueViolationError("duplicate key value violates unique constraint")
    cause.constraint_name = index
    return _wrapped(cause, IntegrityError)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached"),
        _wrapped(pg.ConnectionDoesNotExistError("connection was closed"), invalidated=True),
        _wrapped(pg.AdminShutdownError("terminating connection due to administrator command")),
        _wrapped(pg.CannotConnectNowError("the database system is starting up")),
        _wrapped(pg.TooManyConnectionsError("sorry, too many clients already")),
        _wrapped(pg.QueryCanceledError("canceling statement due to statement timeout")),
        _wrapped(pg.ConnectionFailureError("connection failure"), OperationalError),
    ],
    ids=repr,
)
def test_a_database_out_of_reach_is_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        KeyError("a bug"),
        _wrapped(pg.UndefinedTableError('relation "clusters" does not exist'), ProgrammingError),
        _unique_violation("api_tokens_name_key"),
        _wrapped(pg.SerializationError("could not serialize access")),
    ],
    ids=repr,
)
def test_bugs_and_conflicts_are_not_unavailability(error: BaseException) -> None:
    assert not is_unavailable(error)


def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    """Given another connection holds the write lock, when the busy timeout runs out."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0.05)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as caught:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        holder.close()
        waiter.close()

    assert is_unavailable(OperationalError("BEGIN IMMEDIATE", {}, caught.value))
    assert not is_unavailable(OperationalError("SELECT", {}, sqlite3.OperationalError("syntax")))


def test_lost_races_are_write_conflicts() -> None:
    assert is_write_conflict(_wrapped(pg.SerializationError("could not serialize access")))
    assert is_write_conflict(_wrapped(pg.DeadlockDetectedError("deadlock detected")))
    assert is_write_conflict(_unique_violation(REGISTER_RACE_INDEX), REGISTER_RACE_INDEX)
    assert sqlstate(_unique_violation(REGISTER_RACE_INDEX)) == "23505"


def test_other_failures_are_not_write_conflicts() -> None:
    assert not is_write_conflict(_unique_violation(REGISTER_RACE_INDEX))  # index not named
    assert not is_write_conflict(_unique_violation("api_tokens_name_key"), REGISTER_RACE_INDEX)
    assert not is_write_conflict(ConnectionRefusedError())
    assert not is_write_conflict(ValueError("a bug"))


async def test_a_transaction_that_lost_races_is_run_again_until_it_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retries, "BASE_PAUSE_S", 0.0)
    failures = [
        _wrapped(pg.DeadlockDetectedError("deadlock detected")),
        _unique_violation(REGISTER_RACE_INDEX),
    ]
    calls = 0

    async def transaction() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "committed"

    result = await retries.retry_conflicts(transaction, unique_index=REGISTER_RACE_INDEX)

    assert (result, calls) == ("committed", 3)


async def test_retries_are_bounded_and_other_errors_are_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retries, "BASE_PAUSE_S", 0.0)
    calls = 0

    async def always(error: BaseException) -> None:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(DBAPIError):
        await retries.retry_conflicts(
            lambda: always(_wrapped(pg.SerializationError("could not serialize"))), attempts=4
        )
    assert calls == 4

    calls = 0
    with pytest.raises(ConnectionRefusedError):
        await retries.retry_conflicts(lambda: always(ConnectionRefusedError()))
    assert calls == 1  # the outcome of a write cut off mid-way is unknown: the caller decides
