"""The REST answers' shapes (SPEC §2, §4, §5, §12) as pydantic models: the vendor's objects with
exactly their keys, in the vendor's order, and the types its own client accepts (integer ids,
strings never null).

`rest_shim.operations` selects exactly these fields, in this order, so an answer cannot carry a
key the models do not list; `/openapi.json` describes the answers with them; the tests check real
answers against them in strict mode (`tests/rest_shim/test_answers.py`, and schemathesis against
the document). Answers are not built through the models (a page of 100 clusters with nodes would
pay for it on every request): they are GraphQL's data, reshaped in place.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.limits import MAX_PAGE

_EXAMPLE_TIME = "2024-12-31T11:32:10.367653Z"
Timestamp = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        description="UTC, RFC 3339 with microseconds and `Z`.",
        examples=[_EXAMPLE_TIME],
    ),
]
Count = Annotated[int, Field(ge=0)]
NodeStatus = Literal[
    "monitored", "monitored_with_sensor", "failed", "installation_failed", "disabled"
]


def _absent_when_none(schema: dict[str, Any]) -> None:
    """A key that is left out rather than given a default value (never `null` either)."""
    schema.pop("default", None)


class _Answer(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Node(_Answer):
    """A node of a cluster (the vendor's Get Cluster node object)."""

    id: Count = Field(description="Assigned by the server, never reused.")
    monitored_at: Timestamp = Field(description="When the node was first reported.")
    name: str = Field(description="Unique within its cluster; reports match nodes by name.")
    sensor_installed: bool
    sensor_last_updated: Timestamp | Literal[""] = Field(
        description='When the sensor last reported; `""` when unknown.'
    )
    sensor_version: str = Field(description='`""` when there is no sensor.')
    region: str
    architecture: str = Field(examples=["amd64"])
    hostname: str
    internal_dns: str
    internal_ip: str
    status: NodeStatus


class Cluster(_Answer):
    """A cluster (the vendor's clusterObj): exactly these 13 keys."""

    monitored_at: Timestamp = Field(description="When the cluster was first registered.")
    id: Count = Field(description="Assigned by the server, never reused, even after removal.")
    name: str = Field(examples=["z0runtime"])
    controller_version: str = Field(examples=["0.0.0"])
    controller_status: Literal["running", "stopped"]
    controller_last_updated: Timestamp = Field(description="The last accepted report.")
    provider: str = Field(examples=["kubernetes"])
    regions: list[str] = Field(description="Sorted, without duplicates.")
    nodes_count: Count
    running_nodes_count: Count = Field(description="Nodes `monitored` or `monitored_with_sensor`.")
    failed_nodes_count: Count = Field(description="Nodes `failed`.")
    failed_to_install_nodes_count: Count = Field(description="Nodes `installation_failed`.")
    disabled_nodes_count: Count = Field(description="Nodes `disabled`.")


class ListedCluster(Cluster):
    """A cluster of a page: `nodes` only when the body asked for `return_nodes`."""

    nodes: list[Node] = Field(
        default_factory=list,
        description="All its nodes, ordered by id; present exactly when `return_nodes` is true.",
    )


class Pagination(_Answer):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = Field(description="The limit applied.")
    next_key: str = Field(
        "",
        description="Present exactly when more clusters follow: send it as the next `next_key`.",
        examples=["10"],
        json_schema_extra=_absent_when_none,
    )


class ClustersPage(_Answer):
    """The Get Clusters List answer."""

    total_count: Count = Field(
        description="Live clusters matching the filters, whatever `next_key` is."
    )
    pagination: Pagination
    clusters: list[ListedCluster]


class ClusterWithNodes(Cluster):
    """A cluster with all its nodes, ordered by id."""

    nodes: list[Node]


class ClusterAnswer(_Answer):
    """The Get Cluster answer."""

    cluster: ClusterWithNodes


class ErrorBody(_Answer):
    """Every answer other than 200: exactly one key, a message saying what to fix (never a
    stack trace, SQL, a file path or a secret)."""

    error: str


CLUSTER_KEYS = tuple(Cluster.model_fields)
NODE_KEYS = tuple(Node.model_fields)
