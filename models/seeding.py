"""Bulk inserts of whole clusters, for `seed` and the demo fleet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models.records import ClusterState, NodeCounts, NodeState
from models.tables import clusters, nodes

# `dataclasses.asdict` deep-copies every value: for millions of nodes a shallow read is far faster.
_NODE_FIELDS = tuple(f.name for f in fields(NodeState))


def cluster_values(state: ClusterState, now: datetime) -> dict[str, Any]:
    """Column values of a cluster row for `state`, counts derived from its nodes."""
    counts = NodeCounts.of([n.status for n in state.nodes])
    return {
        "name": state.name,
        "provider": state.provider,
        "regions": sorted(set(state.regions)),
        "controller_version": state.controller_version,
        "controller_status": str(state.controller_status),
        "controller_last_updated": now,
        "nodes_count": counts.nodes,
        "running_nodes_count": counts.running,
        "failed_nodes_count": counts.failed,
        "failed_to_install_nodes_count": counts.failed_to_install,
        "disabled_nodes_count": counts.disabled,
    }


async def insert_clusters(
    conn: AsyncConnection, states: Sequence[ClusterState], now: datetime
) -> list[int]:
    """Insert new clusters with all their nodes (two bulk statements); returns their ids."""
    if not states:
        return []
    rows = [{**cluster_values(s, now), "monitored_at": now} for s in states]
    result = await conn.execute(
        insert(clusters).returning(clusters.c.id, sort_by_parameter_order=True), rows
    )
    ids = [row[0] for row in result]
    node_rows = [
        {
            **{field: getattr(node, field) for field in _NODE_FIELDS},
            "status": str(node.status),
            "cluster_id": cid,
            "monitored_at": now,
        }
        for cid, state in zip(ids, states, strict=True)
        for node in state.nodes
    ]
    if node_rows:
        await conn.execute(insert(nodes), node_rows)
    return ids
