"""Reading clusters and their nodes. Every statement here runs inside the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.records import ClusterRecord, NodeRecord
from models.tables import clusters, nodes

fromisoformat = datetime.fromisoformat

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
) -> dict[int, list[NodeRecord]]:
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
# clusters): run by the driver itself, in the caller's transaction, with the rows made into
# records here. SQLAlchemy's result machinery (several thread hops per statement with
# aiosqlite, a Row and type processors per row) costs more than the rest of the statement.
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
) -> dict[int, list[NodeRecord]] | None:
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
    return _node_records(rows, dialect)


def _node_records(rows: Any, dialect: str) -> dict[int, list[NodeRecord]]:
    """Driver rows as records. Timestamps repeat (every node a report registered shares its
    `monitored_at`): each distinct one is converted once (`instants`), and equal values are
    then one object, whose hash the formatting cache computes once."""
    by_cluster: dict[int, list[NodeRecord]] = defaultdict(list)
    new, record = tuple.__new__, NodeRecord  # a namedtuple's own __new__ is a Python lambda
    instants: dict[Any, datetime] = {}
    if dialect == "sqlite":

        def utc(stored: Any) -> datetime:  # SQLAlchemy's text: 2024-12-31 11:32:10.367653
            instant = instants[stored] = fromisoformat(stored + "+00:00")
            return instant

    else:

        def utc(stored: Any) -> datetime:  # a naive UTC datetime
            instant: datetime = stored.replace(tzinfo=UTC)
            instants[stored] = instant
            return instant

    get = instants.get
    for r in rows:
        updated = r[5]
        by_cluster[r[1]].append(
            new(record, (
                r[0], r[1], get(r[2]) or utc(r[2]), r[3], r[4] if r[4].__class__ is bool
                else bool(r[4]),
                None if updated is None else get(updated) or utc(updated),
                r[6], r[7], r[8], r[9], r[10], r[11], r[12],
            ))
        )  # fmt: skip
    return by_cluster


async def live_by_id(
    conn: AsyncConnection, cluster_ids: Collection[int]
) -> dict[int, ClusterRecord]:
    """The live clusters among `cluster_ids`, by id, in one statement."""
    query = select(*CLUSTER_COLUMNS).where(_live, clusters.c.id.in_(list(cluster_ids)))
    return {row[0]: ClusterRecord._make(row) for row in await conn.execute(query)}
