"""What a database failure means: "unavailable, try again later", "retry the transaction", or a bug.

The one place that knows the drivers' exceptions (SQLAlchemy's wrappers, asyncpg's SQLSTATEs,
sqlite3's error names, the OS's socket errors). The layers above ask `is_unavailable` and map
the answer to their own codes (GraphQL `SERVICE_UNAVAILABLE`, HTTP 503 with `Retry-After`), or
show a command's user `one_line` about it.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# https://www.postgresql.org/docs/15/errcodes-appendix.html
_UNAVAILABLE_CLASSES = ("08", "53")  # connection exception; insufficient resources
_UNAVAILABLE_STATES = frozenset(
    {
        "57P01",  # admin_shutdown: the server is stopping or restarting
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the server is starting up or shutting down
        "57014",  # query_canceled: the statement ran past its timeout
    }
)
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
UNIQUE_VIOLATION = "23505"
# sqlite3's names for "another connection holds the lock" (after the busy timeout ran out).
_SQLITE_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error it wraps, and their causes (cycles and depth bounded)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 16:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        cause = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if cause is not None:
            pending.append(cause)
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            pending.append(current.orig)  # looked at first: the driver's own error


def sqlstate(exc: BaseException) -> str | None:
    """The first PostgreSQL SQLSTATE found in the chain of `exc`, if any."""
    for error in _chain(exc):
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached or used now (worth a retry later).

    Connection refused, reset or timed out; the server shutting down, restarting or starting up;
    a connection the pool found dead; no free connection in the pool in time; a statement past
    its timeout; SQLite's lock still held when the busy timeout ran out.
    """
    for error in _chain(exc):
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, (OSError, PoolTimeoutError)):  # OSError covers TimeoutError too
            return True
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and (
            state in _UNAVAILABLE_STATES or state.startswith(_UNAVAILABLE_CLASSES)
        ):
            return True
        if getattr(error, "sqlite_errorname", None) in _SQLITE_BUSY:
            return True
    return False


def is_dead_connection(exc: BaseException) -> bool:
    """Whether a statement failed because its pooled connection had died (SQLAlchemy then
    invalidates it, and the pool replaces it): the same work on a new connection may succeed."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def is_write_conflict(exc: BaseException, unique_index: str | None = None) -> bool:
    """Whether a write transaction failed only because of a concurrent one, so that running it
    again from the start is right: a serialization failure, a deadlock, or (when `unique_index`
    is given) a violation of that unique index by a row another transaction just committed.
    """
    state = sqlstate(exc)
    if state in (SERIALIZATION_FAILURE, DEADLOCK_DETECTED):
        return True
    if state != UNIQUE_VIOLATION or unique_index is None:
        return False
    return any(getattr(e, "constraint_name", None) == unique_index for e in _chain(exc))


def one_line(exc: BaseException) -> str:
    """A database failure in one line, the driver's own words (SQLAlchemy's span several)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = str(cause).splitlines()
    return lines[0] if lines else type(cause).__name__
