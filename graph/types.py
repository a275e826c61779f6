"""The object types of clusters and nodes, built from the plain records `models` returns (the
pages' types are in `graph.pagination`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, cast

import strawberry

from graph.context import Info
from graph.enums import ControllerStatus, NodeStatus
from graph.loaders import NodesKey
from models.errors import InvalidInput
from models.limits import MAX_NODES_FIRST
from models.records import ClusterRecord, NodeRecord, RowCodec, Rows


@strawberry.type(description="A node of a cluster (the vendor's Get Cluster node object).")
class Node:
    """Resolved from `models.records.NodeRecord` itself, whose attributes are these fields by
    name (its `id` an int, which ID serializes, and its `status` the stored text, which the
    enum serializes): a page has thousands of nodes, and a copy of each would cost more than
    the rest of its completion."""

    id: strawberry.ID = strawberry.field(description="Server-assigned id, never reused.")
    monitored_at: datetime = strawberry.field(description="When the node was first reported.")
    name: str = strawberry.field(description="Node name, unique within its cluster.")
    sensor_installed: bool = strawberry.field(
        description="Whether the runtime sensor is installed."
    )
    sensor_last_updated: datetime | None = strawberry.field(
        description="Last update of the sensor, if any."
    )
    sensor_version: str = strawberry.field(description="Sensor version; empty when none.")
    region: str = strawberry.field(description="Region the node runs in.")
    architecture: str = strawberry.field(description="CPU architecture, e.g. amd64 or arm64.")
    hostname: str = strawberry.field(description="Host name of the node.")
    internal_dns: str = strawberry.field(description="Internal DNS name.")
    internal_ip: str = strawberry.field(description="Internal IP address.")
    status: NodeStatus = strawberry.field(description="Monitoring state of the node.")

    @strawberry.field(
        description="The cluster the node belongs to. Batched: one statement per response."
    )
    async def cluster(self, info: Info) -> Cluster:
        # `self` is the node's record (see above), which knows its cluster's id.
        record = await info.context.loaders.cluster_by_id.load(cast("NodeRecord", self).cluster_id)
        if record is None:  # a node row's cluster is live in the snapshot that read it
            raise RuntimeError("a node's cluster is missing from the snapshot")
        return Cluster.from_record(record)


@strawberry.type(description="A monitored cluster with the health of its nodes.")
class Cluster:
    pk: strawberry.Private[int]
    id: strawberry.ID = strawberry.field(
        description="Server-assigned id as a decimal string; never reused, even after removal."
    )
    name: str = strawberry.field(description="Cluster name, unique among live clusters.")
    monitored_at: datetime = strawberry.field(description="When the cluster was first registered.")
    controller_version: str = strawberry.field(description="Controller version, as reported.")
    controller_status: ControllerStatus = strawberry.field(
        description="Controller state, as reported."
    )
    controller_last_updated: datetime = strawberry.field(
        description="Time of the last accepted report."
    )
    provider: str = strawberry.field(
        description="Cloud provider, e.g. aws, gcp, azure, kubernetes."
    )
    regions: list[str] = strawberry.field(description="Regions, sorted and without duplicates.")
    nodes_count: int = strawberry.field(description="Number of nodes.")
    running_nodes_count: int = strawberry.field(
        description="Nodes with status MONITORED or MONITORED_WITH_SENSOR."
    )
    failed_nodes_count: int = strawberry.field(description="Nodes with status FAILED.")
    failed_to_install_nodes_count: int = strawberry.field(
        description="Nodes with status INSTALLATION_FAILED."
    )
    disabled_nodes_count: int = strawberry.field(description="Nodes with status DISABLED.")

    @strawberry.field(
        description=(
            "Whether the last accepted report is older than CLUSTERQL_STALE_AFTER: a controller "
            "that died cannot report STOPPED, so its cluster looks RUNNING but is stale."
        )
    )
    def stale(self, info: Info) -> bool:
        return self.controller_last_updated < info.context.stale_before

    @strawberry.field(
        description=(
            "The cluster's nodes in id order, read in the same snapshot as the counts. "
            "Batched: one SQL statement serves every cluster of a response."
        )
    )
    def nodes(
        self,
        info: Info,
        status: Annotated[
            list[NodeStatus] | None,
            strawberry.argument(
                description="Only nodes in one of these states (an empty list matches none)."
            ),
        ] = None,
        first: Annotated[
            int | None,
            strawberry.argument(description=f"At most this many nodes, 1 to {MAX_NODES_FIRST}."),
        ] = None,
    ) -> list[Node]:
        if first is not None and not 1 <= first <= MAX_NODES_FIRST:
            raise InvalidInput(
                f"nodes(first:) must be between 1 and {MAX_NODES_FIRST}, got {first}"
            )
        statuses = None if status is None else tuple(sorted({str(s) for s in status}))
        key = NodesKey(cluster_id=self.pk, statuses=statuses, first=first)
        # Not a coroutine: the loader's future itself, its load registered when the field is
        # resolved, so that the planned executor completes a page's 100 of them together, in
        # one coroutine instead of a task each (`graph.execution._settle_objects`). The records
        # it gives are the nodes' sources (see Node).
        return info.context.loaders.nodes_by_cluster_id.load(key)  # type: ignore[return-value]

    @classmethod
    def from_record(cls, r: ClusterRecord) -> Cluster:
        """The cluster of a record, whose stored texts it keeps: the controller status as
        stored (a `ControllerStatus` equals its text), so that a value no member has fails
        where it is read, in its field, and not the whole page (as a node's status does)."""
        return cls(
            pk=r.id,
            id=strawberry.ID(str(r.id)),
            name=r.name,
            monitored_at=r.monitored_at,
            controller_version=r.controller_version,
            controller_status=cast("ControllerStatus", r.controller_status),
            controller_last_updated=r.controller_last_updated,
            provider=r.provider,
            regions=r.regions,
            nodes_count=r.nodes_count,
            running_nodes_count=r.running_nodes_count,
            failed_nodes_count=r.failed_nodes_count,
            failed_to_install_nodes_count=r.failed_to_install_nodes_count,
            disabled_nodes_count=r.disabled_nodes_count,
        )


# A page's clusters as `models.listing` read them, for `Rows`: each made a `Cluster` when read,
# or completed from the record's columns by the planned executor when every field selected is
# one (`pk` and `id` both read the id). Records that are driver rows still to decode keep their
# codec's conversions, and are made records, then clusters.
_CLUSTER_ATTRIBUTES = {"pk": 0, **{name: i for i, name in enumerate(ClusterRecord._fields)}}
CLUSTER_ROWS: RowCodec[Cluster] = RowCodec(
    [None] * len(ClusterRecord._fields),
    Cluster.from_record,  # type: ignore[arg-type]  # a plain codec hands the record itself
    _CLUSTER_ATTRIBUTES,
)


@functools.cache
def _clusters_of(records: RowCodec[ClusterRecord]) -> RowCodec[Cluster]:
    make = records.make
    return RowCodec(
        records.converts,
        lambda values: Cluster.from_record(make(values)),
        _CLUSTER_ATTRIBUTES,
        records.exact,
    )


def cluster_rows(records: Sequence[ClusterRecord]) -> Rows[Cluster]:
    """`records` as the clusters a page holds, each made when read."""
    if isinstance(records, Rows):
        return Rows(records.rows, _clusters_of(records.codec))
    return Rows(records, CLUSTER_ROWS)
