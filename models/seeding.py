"""Bulk inserts of whole clusters, for `seed` and the demo fleet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models import fleet_counts
from models.records import ClusterState
from models.rows import new_cluster, new_node
from models.tables import clusters, nodes


async def insert_clusters(
    conn: AsyncConnection,
    states: Sequence[ClusterState],
    now: datetime,
    holders: Sequence[int | None] | None = None,
) -> list[int]:
    """Insert new clusters with all their nodes (two bulk statements); returns their ids.
    `holders`: the token holding each cluster (none by default)."""
    if not states:
        return []
    holders = holders or [None] * len(states)
    rows = [new_cluster(s, now, h) for s, h in zip(states, holders, strict=True)]
    result = await conn.execute(
        insert(clusters).returning(clusters.c.id, sort_by_parameter_order=True), rows
    )
    ids = [row[0] for row in result]
    node_rows = [
        new_node(node, cid, now)
        for cid, state in zip(ids, states, strict=True)
        for node in state.nodes
    ]
    if node_rows:
        await conn.execute(insert(nodes), node_rows)
    await fleet_counts.add(conn, fleet_counts.of_states(states))
    return ids
