"""Changes of clusters: announced by the writer inside its transaction, heard once committed.

A writer calls `announce` in its write transaction. On PostgreSQL that is `pg_notify`, which the
server delivers to every listening session when the transaction commits and never when it rolls
back; each process hears them on one dedicated connection (`listen`), its own writes included.
On SQLite the change goes to the process's own listeners after the commit
(`models.engine.after_commit`). Either way a notification carries only the kind and the id:
whoever hears it reads the state from the database (`matching`, then the usual reads).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam, func, select, true
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from models.engine import after_commit
from models.faults import is_unavailable, one_line
from models.listing import ClusterFilter, filter_conditions
from models.tables import clusters

log = logging.getLogger("clusterql.models")

CHANNEL = "clusterql_cluster_changes"
# How often the listening connection is checked when nothing arrives: a server that vanished
# without closing the socket is noticed within about this long.
LISTEN_CHECK_S = 5.0


class ChangeKind(StrEnum):
    REGISTERED = "registered"
    UPDATED = "updated"
    REMOVED = "removed"
    STALE = "stale"  # no report for longer than the staleness threshold (found by a sweep)


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    cluster_id: int

    def text(self) -> str:
        return f"{self.kind}:{self.cluster_id}"

    @classmethod
    def parse(cls, text: str) -> Change | None:
        kind, _, cluster_id = text.partition(":")
        try:
            return cls(ChangeKind(kind), int(cluster_id))
        except ValueError:
            return None


Hear = Callable[[Change], None]
_LOCAL: weakref.WeakKeyDictionary[Engine, list[Hear]] = weakref.WeakKeyDictionary()
_NOTIFY = select(func.pg_notify(bindparam("channel"), bindparam("payload")))


async def announce(conn: AsyncConnection, kind: ChangeKind, cluster_id: int) -> None:
    """Announce a change from inside the write transaction that makes it: it is heard once
    that transaction commits, and never if it rolls back."""
    change = Change(kind, cluster_id)
    if conn.dialect.name == "postgresql":
        await conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": change.text()})
    else:
        after_commit(conn, lambda: _hear_locally(conn.engine.sync_engine, change))


def hear_locally(engine: AsyncEngine, hear: Hear) -> Callable[[], None]:
    """Call `hear` with each change committed through `engine` in this process (SQLite's
    fan-out); returns what stops it. `hear` must not wait: the writer calls it."""
    listeners = _LOCAL.setdefault(engine.sync_engine, [])
    listeners.append(hear)
    return lambda: listeners.remove(hear)


def _hear_locally(engine: Engine, change: Change) -> None:
    for hear in list(_LOCAL.get(engine, ())):
        try:
            hear(change)
        except Exception:  # a listener's bug must not fail a committed write
            log.exception("a listener of cluster changes failed")


async def listen(
    engine: AsyncEngine,
    hear: Hear,
    lost: Callable[[str], None],
    *,
    connected: Callable[[], None] | None = None,
    retry_s: float = 1.0,
) -> None:
    """PostgreSQL: hear every committed change of every process, on a connection of its own,
    until cancelled. When that connection is lost (a restart), changes may go unheard until
    it is back: `lost(reason)` is called and it connects again, every `retry_s` seconds."""
    dedicated = create_async_engine(
        engine.url, poolclass=NullPool, connect_args={"timeout": LISTEN_CHECK_S}
    )

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        change = Change.parse(payload)
        if change is not None:
            hear(change)

    try:
        while True:
            try:
                await _listen_once(dedicated, on_notify, connected)
                reason = "the connection to the database closed"
            except Exception as exc:
                if not is_unavailable(exc) and not isinstance(exc, OSError | TimeoutError):
                    raise
                reason = f"the database is unavailable ({one_line(exc)})"
            log.warning("listening for cluster changes: %s; connecting again", reason)
            lost(reason)
            await asyncio.sleep(retry_s)
    finally:
        await dedicated.dispose()


async def _listen_once(
    dedicated: AsyncEngine, on_notify: Callable[..., None], connected: Callable[[], None] | None
) -> None:
    """LISTEN on one connection until it closes; a statement now and then finds a dead one."""
    async with dedicated.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        gone = asyncio.Event()
        driver.add_termination_listener(lambda _c: gone.set())
        await driver.add_listener(CHANNEL, on_notify)
        if connected is not None:
            connected()
        while not gone.is_set():
            try:
                await asyncio.wait_for(gone.wait(), timeout=LISTEN_CHECK_S)
            except TimeoutError:
                await asyncio.wait_for(driver.execute("SELECT 1"), timeout=LISTEN_CHECK_S)


def _match(dialect: str, where: ClusterFilter, kind: ChangeKind) -> Any:
    if kind is ChangeKind.REMOVED:
        # A tombstone keeps its name, provider, regions and controller status, not its nodes.
        conditions = filter_conditions(
            dialect, replace(where, has_unhealthy_nodes=None), live=False
        )
    else:
        conditions = filter_conditions(dialect, where)
    return and_(true(), *conditions)


async def matching(
    conn: AsyncConnection, changes: Sequence[Change], filters: Sequence[ClusterFilter]
) -> list[list[bool]]:
    """For each change, which of `filters` its cluster matches as stored now (one statement).
    A removal matches on what its tombstone keeps; other changes only while the cluster is live
    (a cluster removed since has its own removal to tell)."""
    if not changes:
        return []
    dialect = conn.dialect.name
    kinds = sorted({change.kind for change in changes})
    columns = [
        _match(dialect, where, kind).label(f"m{k}_{f}")
        for k, kind in enumerate(kinds)
        for f, where in enumerate(filters)
    ]
    ids = sorted({change.cluster_id for change in changes})
    query = select(clusters.c.id, *columns).where(clusters.c.id.in_(ids))
    rows = {row[0]: row[1:] for row in await conn.execute(query)}
    found: list[list[bool]] = []
    for change in changes:
        row = rows.get(change.cluster_id)
        start = kinds.index(change.kind) * len(filters)
        found.append(
            [False] * len(filters)
            if row is None
            else [bool(v) for v in row[start : start + len(filters)]]
        )
    return found


async def turned_stale(conn: AsyncConnection, after: datetime, until: datetime) -> list[int]:
    """Live clusters whose last report was in (`after`, `until`]: those that turn stale when
    the threshold moves from one instant to the other."""
    updated = clusters.c.controller_last_updated
    query = select(clusters.c.id).where(
        clusters.c.removed_at.is_(None), updated > after, updated <= until
    )
    return [row[0] for row in await conn.execute(query.order_by(clusters.c.id))]
