"""Column values of cluster and node rows, built from reported states: what reports and bulk
inserts write alike."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from models.records import ClusterState, NodeCounts, NodeState

# `dataclasses.asdict` deep-copies every value (a third of a 5,000-node report): read shallowly.
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


def new_cluster(
    state: ClusterState, now: datetime, owner_token_id: int | None = None
) -> dict[str, Any]:
    """Every column value of the row of a cluster first registered `now`."""
    return {**cluster_values(state, now), "monitored_at": now, "owner_token_id": owner_token_id}


def node_values(node: NodeState) -> dict[str, Any]:
    """Column values of a node row for `node`, but its cluster and `monitored_at`."""
    values = {field: getattr(node, field) for field in _NODE_FIELDS}
    values["status"] = str(node.status)
    return values


def new_node(node: NodeState, cluster_id: int, now: datetime) -> dict[str, Any]:
    """Every column value of the row of a node first reported `now`."""
    return {**node_values(node), "cluster_id": cluster_id, "monitored_at": now}
