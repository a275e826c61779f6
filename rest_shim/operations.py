"""The GraphQL operations the REST endpoints run, and how their results become REST JSON."""

from __future__ import annotations

from typing import Any

_CLUSTER_FIELDS = """
fragment RestCluster on Cluster {
  monitoredAt id name controllerVersion controllerStatus controllerLastUpdated provider
  regions nodesCount runningNodesCount failedNodesCount failedToInstallNodesCount
  disabledNodesCount
}
fragment RestNode on Node {
  id monitoredAt name sensorInstalled sensorLastUpdated sensorVersion region architecture
  hostname internalDns internalIp status
}
"""

LIST_CLUSTERS = (
    """
query RestListClusters(
  $limit: Int!, $nextKey: String, $withNodes: Boolean!, $filter: ClusterFilter,
  $orderBy: ClusterOrderField! = ID, $direction: OrderDirection! = ASC
) {
  clusters(
    limit: $limit, nextKey: $nextKey, filter: $filter, orderBy: $orderBy, direction: $direction
  ) {
    totalCount
    pagination { limit nextKey }
    clusters { ...RestCluster nodes @include(if: $withNodes) { ...RestNode } }
  }
}
"""
    + _CLUSTER_FIELDS
)

GET_CLUSTER = (
    """
query RestGetCluster($id: ID!) {
  cluster(id: $id) { ...RestCluster nodes { ...RestNode } }
}
"""
    + _CLUSTER_FIELDS
)


def rest_cluster(c: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Cluster as the vendor's clusterObj: snake_case, lower-case enums, and the id a
    JSON number (the vendor's example answer and its client's Get Cluster schema, SPEC §12)."""
    out = {
        "monitored_at": c["monitoredAt"],
        "id": int(c["id"]),
        "name": c["name"],
        "controller_version": c["controllerVersion"],
        "controller_status": c["controllerStatus"].lower(),
        "controller_last_updated": c["controllerLastUpdated"],
        "provider": c["provider"],
        "regions": c["regions"],
        "nodes_count": c["nodesCount"],
        "running_nodes_count": c["runningNodesCount"],
        "failed_nodes_count": c["failedNodesCount"],
        "failed_to_install_nodes_count": c["failedToInstallNodesCount"],
        "disabled_nodes_count": c["disabledNodesCount"],
    }
    if "nodes" in c:
        out["nodes"] = [rest_node(n) for n in c["nodes"]]
    return out


def rest_node(n: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Node as the vendor's node object: its id a JSON number, and an unknown
    `sensor_last_updated` `""` (the vendor's client requires a string, as for `sensor_version`)."""
    return {
        "id": int(n["id"]),
        "monitored_at": n["monitoredAt"],
        "name": n["name"],
        "sensor_installed": n["sensorInstalled"],
        "sensor_last_updated": n["sensorLastUpdated"] or "",
        "sensor_version": n["sensorVersion"],
        "region": n["region"],
        "architecture": n["architecture"],
        "hostname": n["hostname"],
        "internal_dns": n["internalDns"],
        "internal_ip": n["internalIp"],
        "status": n["status"].lower(),
    }


def rest_page(page: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL ClusterPage as the Get Clusters List response (`next_key` only if more follow)."""
    pagination: dict[str, Any] = {"limit": page["pagination"]["limit"]}
    if page["pagination"]["nextKey"] is not None:
        pagination["next_key"] = page["pagination"]["nextKey"]
    return {
        "total_count": page["totalCount"],
        "pagination": pagination,
        "clusters": [rest_cluster(c) for c in page["clusters"]],
    }
