"""Reading clusters and their nodes. Every statement here runs inside the caller's transaction."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.records import ClusterRecord, NodeRecord, RowCodec, Rows
from models.tables import clusters, nodes

fromisoformat = datetime.fromisoformat
INSTANTS_KEPT = 16_384  # distinct stored timestamps whose datetime is kept
_CLUSTER_ID = itemgetter(1)

CLUSTER_COLUMNS = (
    clusters.c.id,
    clusters.c.name,
    clusters.c.monitored_at,
    clusters.c.controller_version,
    clusters.c.controller_status,
    clusters.c.controller_last_updated,
    clusters.c.provider,
    clusters.c.regions,
    clusters.c.nodes_count,
    clusters.c.running_nodes_count,
    clusters.c.failed_nodes_count,
    clusters.c.failed_to_install_nodes_count,
    clusters.c.disabled_nodes_count,
)
NODE_COLUMNS = (
    nodes.c.id,
    nodes.c.cluster_id,
    nodes.c.monitored_at,
    nodes.c.name,
    nodes.c.sensor_installed,
    nodes.c.sensor_last_updated,
    nodes.c.sensor_version,
    nodes.c.region,
    nodes.c.architecture,
    nodes.c.hostname,
    nodes.c.internal_dns,
    nodes.c.internal_ip,
    nodes.c.status,
)
_live = clusters.c.removed_at.is_(None)
_ONE_LIVE = select(*CLUSTER_COLUMNS).where(_live, clusters.c.id == bindparam("id"))
_ID_ASSIGNED = select(clusters.c.id).where(clusters.c.id == bindparam("id"))


async def id_assigned(conn: AsyncConnection, cluster_id: int) -> bool:
    """Whether `cluster_id` was ever given to a cluster (live or removed: ids are never reused)."""
    return (await conn.execute(_ID_ASSIGNED, {"id": cluster_id})).first() is not None


async def get_live(conn: AsyncConnection, cluster_id: int) -> ClusterRecord | None:
    """The live cluster with this id, or None (never assigned, or removed)."""
    row = (await conn.execute(_ONE_LIVE, {"id": cluster_id})).first()
    return None if row is None else ClusterRecord._make(row)


async def nodes_of(
    conn: AsyncConnection,
    cluster_ids: Collection[int],
    statuses: Sequence[str] | None = None,
    first: int | None = None,
) -> Mapping[int, Sequence[NodeRecord]]:
    """Nodes of many clusters in one statement, each cluster's in id order.

    `statuses` keeps only nodes in those states; `first` keeps each cluster's first `first`
    nodes (after the status filter).
    """
    if statuses is None and first is None:
        fast = await _all_nodes_by_driver(conn, cluster_ids)
        if fast is not None:
            return fast
    conditions = [nodes.c.cluster_id.in_(list(cluster_ids))]
    if statuses is not None:
        conditions.append(nodes.c.status.in_(list(statuses)))
    if first is None:
        query = select(*NODE_COLUMNS).where(*conditions)
        ordered = query.order_by(nodes.c.cluster_id, nodes.c.id)
    else:
        rank = (
            func.row_number()
            .over(partition_by=nodes.c.cluster_id, order_by=nodes.c.id)
            .label("rank")
        )
        ranked = select(*NODE_COLUMNS, rank).where(*conditions).subquery()
        ordered = (
            select(*(ranked.c[c.name] for c in NODE_COLUMNS))
            .where(ranked.c.rank <= first)
            .order_by(ranked.c.cluster_id, ranked.c.id)
        )
    by_cluster: dict[int, list[NodeRecord]] = defaultdict(list)
    for row in await conn.execute(ordered):
        by_cluster[row[1]].append(NodeRecord._make(row))
    return by_cluster


# Every node of a page's clusters, the heaviest read of a request (2,000 rows for a page of 100
# clusters): run by the driver itself, in the caller's transaction, its rows kept as they came
# (`Rows`, made `NodeRecord`s only when read). SQLAlchemy's result machinery (a Row and type
# processors per row) costs more than the rest of the statement.
_NODE_SELECT = ", ".join(c.name for c in NODE_COLUMNS)
_ALL_NODES_SQLITE = (
    f"SELECT {_NODE_SELECT} FROM nodes WHERE cluster_id IN (SELECT value FROM json_each(?)) "
    "ORDER BY cluster_id, id"
)
_ALL_NODES_POSTGRESQL = (
    f"SELECT {_NODE_SELECT} FROM nodes WHERE cluster_id = ANY($1::bigint[]) ORDER BY cluster_id, id"
)


async def _all_nodes_by_driver(
    conn: AsyncConnection, cluster_ids: Collection[int]
) -> dict[int, Rows[NodeRecord]] | None:
    """`nodes_of` without filters through the driver; None when it cannot be used here (no
    transaction begun at the driver's level yet: the statement would not see the snapshot) or
    when the driver failed: SQLAlchemy's way then runs it again, and fails the same way with
    SQLAlchemy's translation of the error (an unavailable database stays a 503)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        return None
    dialect = conn.dialect.name
    if dialect == "sqlite" and driver.in_transaction:
        text = "[" + ",".join(map(str, sorted(cluster_ids))) + "]"
        fetch = driver.execute_fetchall(_ALL_NODES_SQLITE, (text,))
    elif dialect == "postgresql" and driver.is_in_transaction():
        fetch = driver.fetch(_ALL_NODES_POSTGRESQL, sorted(cluster_ids))
    else:
        return None
    try:
        rows = await fetch
    except Exception:
        return None
    except BaseException:
        # Cancelled mid-statement (a sibling field failed): SQLAlchemy would invalidate its
        # connection here, so must we, or the pool hands out one still busy with it.
        raw.invalidate(soft=True)
        if dialect == "postgresql":
            driver.terminate()
        raise
    return _node_rows(rows, dialect)


@functools.lru_cache(maxsize=INSTANTS_KEPT)
def _sqlite_instant(stored: str) -> datetime:
    return fromisoformat(stored + "+00:00")  # SQLAlchemy's text: 2024-12-31 11:32:10.367653


@functools.lru_cache(maxsize=INSTANTS_KEPT)
def _naive_utc(stored: datetime) -> datetime:
    return stored.replace(tzinfo=UTC)


def _codec(converts: dict[str, Callable[[Any], Any]]) -> RowCodec[NodeRecord]:
    assert [c.name for c in NODE_COLUMNS] == list(NodeRecord._fields)  # the rows' order
    converted = [converts.get(c.name) for c in NODE_COLUMNS]
    return RowCodec(converted, NodeRecord._make, NodeRecord._fields)


# Timestamps repeat (every node a report registered shares its `monitored_at`): each distinct
# stored value is converted once and kept, and equal values are then one object.
ROW_CODECS = {
    "sqlite": _codec(
        {"monitored_at": _sqlite_instant, "sensor_last_updated": _sqlite_instant,
         "sensor_installed": bool},
    ),
    "postgresql": _codec({"monitored_at": _naive_utc, "sensor_last_updated": _naive_utc}),
}  # fmt: skip


def _node_rows(rows: list[Any], dialect: str) -> dict[int, Rows[NodeRecord]]:
    """Driver rows (in cluster order) as each cluster's nodes."""
    codec = ROW_CODECS[dialect]
    return {key: Rows(list(group), codec) for key, group in groupby(rows, _CLUSTER_ID)}


async def live_by_id(
    conn: AsyncConnection, cluster_ids: Collection[int]
) -> dict[int, ClusterRecord]:
    """The live clusters among `cluster_ids`, by id, in one statement."""
    query = select(*CLUSTER_COLUMNS).where(_live, clusters.c.id.in_(list(cluster_ids)))
    return {row[0]: ClusterRecord._make(row) for row in await conn.execute(query)}
