"""Removing a cluster: a tombstone row stays (its id keeps its place), its nodes go."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.engine import write_transaction
from models.tables import clusters, nodes


async def remove_cluster(conn: AsyncConnection, cluster_id: int, now: datetime) -> bool:
    """Tombstone the live cluster `cluster_id`; False if there is none."""
    result = await conn.execute(
        update(clusters)
        .where(clusters.c.id == cluster_id, clusters.c.removed_at.is_(None))
        .values(
            removed_at=now,
            nodes_count=0,
            running_nodes_count=0,
            failed_nodes_count=0,
            failed_to_install_nodes_count=0,
            disabled_nodes_count=0,
        )
    )
    if result.rowcount == 0:
        return False
    await conn.execute(delete(nodes).where(nodes.c.cluster_id == cluster_id))
    return True


async def remove(engine: AsyncEngine, cluster_id: int, now: datetime) -> bool:
    """Tombstone a live cluster in its own write transaction; False if there is none."""
    async with write_transaction(engine) as conn:
        return await remove_cluster(conn, cluster_id, now)
