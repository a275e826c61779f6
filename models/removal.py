"""Removing a cluster: a tombstone row stays (its id keeps its place), its nodes go."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import changes, fleet_counts
from models.changes import ChangeKind
from models.engine import write_transaction
from models.retries import retry_conflicts
from models.tables import clusters, nodes

# Locks the live row (PostgreSQL) so that a removal and a report of one cluster serialize.
_LIVE_FOR_UPDATE = (
    select(clusters.c.id)
    .where(clusters.c.id == bindparam("id"), clusters.c.removed_at.is_(None))
    .with_for_update()
)


async def remove_cluster(conn: AsyncConnection, cluster_id: int, now: datetime) -> bool:
    """Tombstone the live cluster `cluster_id`; False if there is none."""
    if (await conn.execute(_LIVE_FOR_UPDATE, {"id": cluster_id})).first() is None:
        return False
    gone = await fleet_counts.of_cluster(conn, cluster_id)
    await fleet_counts.add(conn, fleet_counts.difference(fleet_counts.Delta(), gone))
    await conn.execute(
        update(clusters)
        .where(clusters.c.id == cluster_id)
        .values(
            removed_at=now,
            nodes_count=0,
            running_nodes_count=0,
            failed_nodes_count=0,
            failed_to_install_nodes_count=0,
            disabled_nodes_count=0,
        )
    )
    await conn.execute(delete(nodes).where(nodes.c.cluster_id == cluster_id))
    await changes.announce(conn, ChangeKind.REMOVED, cluster_id)
    return True


async def remove(engine: AsyncEngine, cluster_id: int, now: datetime) -> bool:
    """Tombstone a live cluster in its own write transaction; False if there is none.

    A transaction that lost a race with a concurrent one is run again (`retry_conflicts`).
    """

    async def transaction() -> bool:
        async with write_transaction(engine) as conn:
            return await remove_cluster(conn, cluster_id, now)

    return await retry_conflicts(transaction)
