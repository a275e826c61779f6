"""Prometheus metrics (SPEC §10): every family, what is counted into it, and the scrape.

The families are defined here and nowhere else, and counted from hooks, never from the code
they watch: requests, refusals, GraphQL operations and reports from `clusterql.access` (one
middleware, which reads what each request did), the database pool and SQLite's write lock from
SQLAlchemy's events (`watch`). No label holds a cluster name or id, a token name or a raw path:
routes are templates, operation names are bounded (`OperationNames`), methods are the standard
ones.

Several processes (`clusterql serve --workers N`) share a directory, PROMETHEUS_MULTIPROC_DIR,
where each keeps its figures; a scrape, served by whichever process, adds them all up
(prometheus-client's multiprocess mode, which reads that variable when it is first imported:
`clusterql.cli.serve` sets it before any worker starts, in a directory it creates and removes).
https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import functools
import glob
import os
import re
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from graph.outcome import TIMEOUT, Outcome

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
# What prometheus-client chose when it was first imported (the values in files or in memory).
MULTIPROCESS: bool = getattr(values.ValueClass, "_multiprocess", False)

# Seconds: from a cached REST page (a few ms) to the operation time limit (15 s).
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# Waits that are usually nothing, and worth seeing from a millisecond on.
WAITS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "clusterql_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "clusterql_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=LATENCY,
)
IN_FLIGHT = Gauge(
    "clusterql_http_requests_in_flight",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
)
OPERATION_SECONDS = Histogram(
    "clusterql_graphql_operation_duration_seconds",
    "Time to answer a request that ran a GraphQL operation (at /graphql or for the REST API), "
    "by operation name (`anonymous` without one, `other` past the names kept) and type "
    "(`invalid`: the document had no operation to run).",
    ["operation", "type"],
    buckets=LATENCY,
)
GRAPHQL_ERRORS = Counter(
    "clusterql_graphql_errors",
    "Errors in /graphql answers, by extensions.code.",
    ["code"],
)
REFUSALS = Counter(
    "clusterql_refusals",
    "Requests refused by a limit (429 rate limits, 503 in-flight bound and time limit, cost "
    "limits, 413 body size) or because the database was unavailable (503), by reason.",
    ["reason"],
)
REPORTS = Counter(
    "clusterql_reports",
    "Controller reports (reportCluster), applied or refused.",
    ["outcome"],
)
REPORT_SECONDS = Histogram(
    "clusterql_report_apply_seconds",
    "Time to apply one controller report, from checking its input to its commit.",
    buckets=LATENCY,
)
POOL_IN_USE = Gauge(
    "clusterql_database_connections_in_use",
    "Database connections checked out of the pool now.",
    multiprocess_mode="livesum",
)
POOL_WAIT_SECONDS = Histogram(
    "clusterql_database_pool_wait_seconds",
    "Time to get a connection from the pool (waiting for a free one, or opening one).",
    buckets=WAITS,
)
WRITE_LOCK_WAIT_SECONDS = Histogram(
    "clusterql_sqlite_write_lock_wait_seconds",
    "Time a write transaction waited for SQLite's write lock (BEGIN IMMEDIATE), also when it "
    "never got it (a 503).",
    buckets=WAITS,
)

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Status codes the limits answer with, and the reason a refusal without a note has.
_UNNOTED = {413: "body_size", 503: "database_unavailable"}


class OperationNames:
    """The operation names a process counts by: the first `kept` distinct ones, then `other`
    (names come from callers, and each one would be a new series)."""

    def __init__(self, kept: int = 100) -> None:
        self.kept = kept
        self._names: set[str] = set()

    def label(self, name: str | None) -> str:
        if name is None:
            return "anonymous"
        if name in self._names:
            return name
        if len(self._names) >= self.kept:
            return "other"
        self._names.add(name)
        return name


NAMES = OperationNames()


def count(
    route: str,
    method: str,
    status: int,
    seconds: float,
    *,
    outcome: Outcome | None,
    refusal: str | None,
    graphql_codes: list[str],
) -> None:
    """Count one answered request: what `clusterql.access` saw of it."""
    method = method if method in STANDARD_METHODS else "other"
    requests, request_seconds = _request_children(route, method, status)
    requests.inc()
    request_seconds.observe(seconds)
    limit = None
    if outcome is not None:
        _operation_child(NAMES.label(outcome.name), outcome.type or "invalid").observe(seconds)
        limit = _limit_reason(outcome.limit)
        for report in outcome.reports:
            REPORTS.labels("applied" if report.applied else "refused").inc()
            if report.applied:
                REPORT_SECONDS.observe(report.seconds)
    for code in graphql_codes:
        GRAPHQL_ERRORS.labels(code).inc()
    reason = refusal or limit or _UNNOTED.get(status)
    if reason:
        REFUSALS.labels(reason).inc()


# A family's `labels()` checks and converts its values and takes a lock on every call: a request's
# children are looked up once per distinct label set (bounded, as the labels are) and kept.
@functools.cache
def _request_children(route: str, method: str, status: int) -> tuple[Any, Any]:
    return REQUESTS.labels(route, method, str(status)), REQUEST_SECONDS.labels(route, method)


@functools.cache
def _operation_child(name: str, type_: str) -> Any:
    return OPERATION_SECONDS.labels(name, type_)


def _limit_reason(limit: str | None) -> str | None:
    """The refusal reason of an operation refused by a cost limit or its time limit."""
    if limit is None:
        return None
    return "operation_timeout" if limit == TIMEOUT else f"cost_{limit}"


# --- the database -----------------------------------------------------------------------------


def watch(engine: AsyncEngine) -> None:
    """Count `engine`'s pool and (on SQLite) its write-lock waits, from SQLAlchemy's events."""
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: POOL_IN_USE.dec())
    connect = pool.connect

    def timed_connect() -> Any:  # SQLAlchemy's pool has no event before a checkout
        started = time.perf_counter()
        try:
            return connect()
        finally:
            POOL_WAIT_SECONDS.observe(time.perf_counter() - started)

    pool.connect = timed_connect  # type: ignore[method-assign]
    if engine.dialect.name == "sqlite":
        _watch_write_lock(engine)


_LOCK_STARTED = "clusterql_lock_wait_started"


def _watch_write_lock(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn: Connection, _c: Any, statement: str, *_: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            conn.info[_LOCK_STARTED] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Connection, *_: Any) -> None:
        started = conn.info.pop(_LOCK_STARTED, None)
        if started is not None:
            WRITE_LOCK_WAIT_SECONDS.observe(time.perf_counter() - started)

    @event.listens_for(engine.sync_engine, "handle_error")
    def _failed(context: Any) -> None:
        if context.connection is not None:
            _after(context.connection)


# --- the scrape and the processes -------------------------------------------------------------


def scrape() -> bytes:
    """Every family in Prometheus' text format: of every process sharing the directory in
    multiprocess mode (workers that died are let go first), else of this one."""
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    let_go_of_the_dead(os.environ[ENVIRONMENT])
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def response(_request: Request) -> Response:
    return Response(scrape(), media_type=CONTENT_TYPE_LATEST)


_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def let_go_of_the_dead(path: str) -> None:
    """Forget the live gauges (connections and requests in use) of processes that are gone, so
    that a worker that died or was replaced does not count forever. Counters and histograms
    of dead workers stay in the sums, as Prometheus expects of counters."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        found = _LIVE_FILE.fullmatch(os.path.basename(name))
        if found and not _alive(int(found.group(1))):
            multiprocess.mark_process_dead(int(found.group(1)), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leaving() -> None:
    """This process stops serving: its live gauges no longer count."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
