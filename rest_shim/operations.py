"""The GraphQL operations the REST endpoints run, and how their results become REST JSON.

The operations alias every field to its REST name (`monitored_at: monitoredAt`), so GraphQL
already answers the vendor's keys in the vendor's order. What is left is in the values: ids are
JSON numbers, enums lower case, and an unknown sensor time `""`. The operations run with
`REST_WIRE` (`graph.wire`), so objects made straight from rows come out that way;
`rest_clusters` reshapes the others, which have GraphQL's values (a string id says which).
"""

from __future__ import annotations

from typing import Any

from graph.wire import Wire
from rest_shim.answers import CLUSTER_KEYS, NODE_KEYS


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _selection(keys: tuple[str, ...]) -> str:
    """The fields of `keys` (REST names), each aliased to its REST name when GraphQL's differs."""
    return " ".join(key if _camel(key) == key else f"{key}: {_camel(key)}" for key in keys)


# The answers' models (`rest_shim.answers`) name the keys: an answer has exactly those, in order.
_CLUSTER_FIELDS = f"""
fragment RestCluster on Cluster {{ {_selection(CLUSTER_KEYS)} }}
fragment RestNode on Node {{ {_selection(NODE_KEYS)} }}
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

# GraphQL enum names -> the vendor's values
_CONTROLLER_STATUS = {"RUNNING": "running", "STOPPED": "stopped"}
_NODE_STATUS = {
    "MONITORED": "monitored",
    "MONITORED_WITH_SENSOR": "monitored_with_sensor",
    "FAILED": "failed",
    "INSTALLATION_FAILED": "installation_failed",
    "DISABLED": "disabled",
}
# an unknown sensor time: the vendor's client requires a string, as for `sensor_version`
_NO_SENSOR_TIME = ""
REST_WIRE = Wire(
    int_ids=True,
    enums={"ControllerStatus": _CONTROLLER_STATUS, "NodeStatus": _NODE_STATUS},
    nulls={("Node", "sensorLastUpdated"): _NO_SENSOR_TIME},
)


def rest_clusters(clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`RestCluster`s (with their `RestNode`s, if selected) made the vendor's clusterObjs, in
    place: ids JSON numbers (the vendor's example answer and its client's Get Cluster schema,
    SPEC §12) and statuses lower case. Objects already in `REST_WIRE`'s values (an int id) are
    left as they are. One loop for a whole page: a call per cluster cost more than the
    reshaping it did."""
    controller_status, node_status = _CONTROLLER_STATUS, _NODE_STATUS
    for c in clusters:
        if c["id"].__class__ is str:
            c["id"] = int(c["id"])
            c["controller_status"] = controller_status[c["controller_status"]]
        nodes = c.get("nodes")
        if nodes is not None:
            for n in nodes:
                if n["id"].__class__ is str:
                    n["id"] = int(n["id"])
                    if n["sensor_last_updated"] is None:
                        n["sensor_last_updated"] = _NO_SENSOR_TIME
                    n["status"] = node_status[n["status"]]
    return clusters


def rest_page(page: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL ClusterPage as the Get Clusters List response (`next_key` only if more follow)."""
    pagination: dict[str, Any] = {"limit": page["pagination"]["limit"]}
    if page["pagination"]["nextKey"] is not None:
        pagination["next_key"] = page["pagination"]["nextKey"]
    return {
        "total_count": page["totalCount"],
        "pagination": pagination,
        "clusters": rest_clusters(page["clusters"]),
    }
