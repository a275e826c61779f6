"""Applying a controller's full-state report to one cluster, in the caller's write transaction.

Nodes are matched by name: a kept node keeps its id and `monitored_at`, new names get new ids,
missing names are deleted; the cluster's counts, regions and `controller_last_updated` change in
the same transaction, so no reader ever sees them disagree with the node rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import changes, fleet_counts
from models.bindings import OUTSIDE_BINDING
from models.changes import ChangeKind
from models.clusters import get_live, nodes_of
from models.engine import write_transaction
from models.errors import Forbidden
from models.limits import CONTROLLER_MAX_CLUSTERS
from models.records import ClusterRecord, ClusterState, NodeRecord, NodeState
from models.retries import retry_conflicts
from models.rows import cluster_values, new_cluster, new_node, node_values
from models.tables import api_tokens, clusters, nodes
from models.tokens import Permission, Principal

_live = clusters.c.removed_at.is_(None)
# Locks the live row (PostgreSQL; SQLite has no row locks and needs none: one writer at a time).
# Under READ COMMITTED a report waiting here sees the row as the previous report committed it.
_LIVE_BY_NAME_FOR_UPDATE = (
    select(clusters.c.id, clusters.c.owner_token_id)
    .where(_live, clusters.c.name == bindparam("name"))
    .with_for_update()
)
# Serializes one token's registrations (PostgreSQL), so that two cannot both pass its cap.
_TOKEN_FOR_UPDATE = (
    select(api_tokens.c.id).where(api_tokens.c.id == bindparam("token_id")).with_for_update()
)
_HELD = (
    select(func.count())
    .select_from(clusters)
    .where(_live, clusters.c.owner_token_id == bindparam("token_id"))
)
# The unique index two racing first reports of one name collide on.
REGISTER_RACE_INDEX = "ux_clusters_live_name"
_UPDATE_NODE = (
    update(nodes)
    .where(nodes.c.id == bindparam("node_id"))
    .values(
        sensor_installed=bindparam("sensor_installed"),
        sensor_last_updated=bindparam("sensor_last_updated"),
        sensor_version=bindparam("sensor_version"),
        region=bindparam("region"),
        architecture=bindparam("architecture"),
        hostname=bindparam("hostname"),
        internal_dns=bindparam("internal_dns"),
        internal_ip=bindparam("internal_ip"),
        status=bindparam("status"),
    )
)


# The columns a report may change on a kept node: it is written only if one of them differs.
_CHANGEABLE = (
    "sensor_installed",
    "sensor_last_updated",
    "sensor_version",
    "region",
    "architecture",
    "hostname",
    "internal_dns",
    "internal_ip",
    "status",
)


async def apply_report(
    conn: AsyncConnection,
    state: ClusterState,
    principal: Principal,
    now: datetime,
    max_clusters: int = CONTROLLER_MAX_CLUSTERS,
) -> ClusterRecord:
    """Register or update the live cluster named `state.name`; returns it as stored.

    An administrator may report any cluster; a Controller token only the names of its binding
    (SPEC §3), checked before any statement so that a refusal is the same whatever exists. A
    Controller token holds the clusters it registers or reports after another token did (a
    rotated secret takes over its predecessor's), at most `max_clusters` of them.
    Must run in a write transaction so that reports of one cluster serialize: SQLite's
    `BEGIN IMMEDIATE` admits one writer at a time; on PostgreSQL the live row is locked
    (`FOR UPDATE`) until commit, and a concurrent first report of the same name fails on the
    live-name unique index (`REGISTER_RACE_INDEX`): run the whole transaction again then.
    """
    if not principal.may_report(state.name):
        raise Forbidden(OUTSIDE_BINDING)
    controller = not principal.may(Permission.ADMIN)
    found = (await conn.execute(_LIVE_BY_NAME_FOR_UPDATE, {"name": state.name})).first()
    if found is None:
        if controller:
            await _check_cap(conn, principal, max_clusters)
        cluster_id = await _register(conn, state, principal, now)
        await fleet_counts.add(conn, fleet_counts.of_states([state]))
    else:
        cluster_id, holder = found
        values = cluster_values(state, now)
        if controller and holder != principal.token_id:
            await _check_cap(conn, principal, max_clusters)
            values["owner_token_id"] = principal.token_id
        before = await fleet_counts.of_cluster(conn, cluster_id)
        await fleet_counts.add(
            conn, fleet_counts.difference(fleet_counts.of_states([state]), before)
        )
        await _replace_nodes(conn, cluster_id, state.nodes, now)
        await conn.execute(update(clusters).where(clusters.c.id == cluster_id).values(values))
    kind = ChangeKind.REGISTERED if found is None else ChangeKind.UPDATED
    await changes.announce(conn, kind, cluster_id)  # heard once this transaction commits
    record = await get_live(conn, cluster_id)
    assert record is not None
    return record


async def _check_cap(conn: AsyncConnection, principal: Principal, max_clusters: int) -> None:
    """`Forbidden` when the token already holds `max_clusters` live clusters."""
    await conn.execute(_TOKEN_FOR_UPDATE, {"token_id": principal.token_id})
    held: int = (await conn.execute(_HELD, {"token_id": principal.token_id})).scalar_one()
    if held >= max_clusters:
        raise Forbidden(
            f"this token already holds {held} clusters, its limit "
            f"(CLUSTERQL_CONTROLLER_MAX_CLUSTERS = {max_clusters}): an Admin removes the "
            "clusters it no longer reports, or raises the limit"
        )


async def _register(
    conn: AsyncConnection, state: ClusterState, principal: Principal, now: datetime
) -> int:
    values = new_cluster(state, now, principal.token_id)
    cluster_id: int = (
        await conn.execute(insert(clusters).values(values).returning(clusters.c.id))
    ).scalar_one()
    if state.nodes:
        await conn.execute(
            insert(nodes),
            [new_node(n, cluster_id, now) for n in state.nodes],
        )
    return cluster_id


async def _replace_nodes(
    conn: AsyncConnection, cluster_id: int, reported: list[NodeState], now: datetime
) -> None:
    rows = await conn.execute(
        select(nodes.c.name, nodes.c.id, *(nodes.c[c] for c in _CHANGEABLE)).where(
            nodes.c.cluster_id == cluster_id
        )
    )
    # name -> (id, the changeable columns as stored)
    current: dict[str, tuple[int, tuple[Any, ...]]] = {row[0]: (row[1], row[2:]) for row in rows}
    names = {n.name for n in reported}
    gone = [node_id for name, (node_id, _) in current.items() if name not in names]
    if gone:
        await conn.execute(delete(nodes).where(nodes.c.id.in_(gone)))
    changed: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for node in reported:
        values = node_values(node)
        found = current.get(node.name)
        if found is None:
            new.append({**values, "cluster_id": cluster_id, "monitored_at": now})
        elif tuple(values[c] for c in _CHANGEABLE) != tuple(found[1]):
            changed.append({**values, "node_id": found[0]})
    # A steady controller changes a few nodes per report: only those rows are written.
    if changed:
        await conn.execute(_UPDATE_NODE, changed)
    if new:
        await conn.execute(insert(nodes), new)


async def report_cluster(
    engine: AsyncEngine,
    state: ClusterState,
    principal: Principal,
    now: datetime,
    max_clusters: int = CONTROLLER_MAX_CLUSTERS,
) -> tuple[ClusterRecord, Sequence[NodeRecord]]:
    """Apply one report in its own write transaction; the cluster and nodes as committed.

    A transaction that lost a race with a concurrent one is run again (`retry_conflicts`).
    """

    async def transaction() -> tuple[ClusterRecord, Sequence[NodeRecord]]:
        async with write_transaction(engine) as conn:
            record = await apply_report(conn, state, principal, now, max_clusters)
            stored = await nodes_of(conn, [record.id])
        return record, stored.get(record.id, [])

    return await retry_conflicts(transaction, unique_index=REGISTER_RACE_INDEX)
