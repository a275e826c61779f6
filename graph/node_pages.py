"""`nodes(filter:, first:, after:, last:, before:)` (SPEC §11): a Relay connection over the nodes
of every live cluster, keyset-paginated by node id, with signed cursors (`graph.cursors`)."""

from __future__ import annotations

from typing import cast

import strawberry

from graph.context import Context, Info
from graph.enums import NodeStatus
from graph.filters import checked_texts, checked_values
from graph.pagination import PageInfo, page_info, relay_arguments
from graph.scalars import parse_cluster_id
from graph.types import Node
from models import node_search
from models.errors import InvalidInput
from models.limits import MAX_TEXT
from models.node_search import NodeFilter
from models.records import NodeRecord
from models.text import checked, checked_address


@strawberry.input(name="NodeFilter", description="Conditions on nodes; every one given must hold.")
class NodeFilterInput:
    statuses: list[NodeStatus] | None = strawberry.field(
        default=None, description="Status is one of these."
    )
    sensor_installed: bool | None = strawberry.field(
        default=None, description="true: the sensor is installed; false: it is not."
    )
    sensor_versions: list[str] | None = strawberry.field(
        default=None, description='Sensor version is one of these, e.g. ["5.3.0"].'
    )
    name: str | None = strawberry.field(
        default=None, description="Node name contains this text, ignoring case."
    )
    hostname: str | None = strawberry.field(
        default=None, description="Host name contains this text, ignoring case."
    )
    internal_ip: str | None = strawberry.field(
        default=None, description="Internal IP address is exactly this."
    )
    regions: list[str] | None = strawberry.field(
        default=None, description="Region is one of these."
    )
    architectures: list[str] | None = strawberry.field(
        default=None, description="Architecture is one of these, e.g. arm64."
    )
    cluster_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The node belongs to one of these clusters."
    )

    def to_domain(self) -> NodeFilter:
        ids = checked_values(
            "clusterIds", None if self.cluster_ids is None else list(self.cluster_ids)
        )
        cluster_ids = None
        if ids is not None:
            parsed = [parse_cluster_id(i) for i in ids]
            bad = [i for i, p in zip(ids, parsed, strict=True) if p is None]
            if bad:
                raise InvalidInput(f"filter clusterIds: {bad[0]!r} is not a cluster id")
            cluster_ids = tuple(sorted(p for p in parsed if p is not None))
        statuses = None if self.statuses is None else [str(s) for s in self.statuses]
        return NodeFilter(
            statuses=checked_values("statuses", statuses),
            sensor_installed=self.sensor_installed,
            sensor_versions=checked_values(
                "sensorVersions", checked_texts("sensorVersions", self.sensor_versions, MAX_TEXT)
            ),
            name=None if self.name is None else checked("filter name", self.name),
            hostname=None if self.hostname is None else checked("filter hostname", self.hostname),
            internal_ip=(
                None
                if self.internal_ip is None
                else checked_address("filter internalIp", self.internal_ip)
            ),
            regions=checked_values("regions", checked_texts("regions", self.regions, MAX_TEXT)),
            architectures=checked_values(
                "architectures", checked_texts("architectures", self.architectures, MAX_TEXT)
            ),
            cluster_ids=cluster_ids,
        )


@strawberry.type(description="A node and its cursor.")
class NodeEdge:
    cursor: str = strawberry.field(description="Pass as after or before to page from here.")
    node: Node = strawberry.field(description="The node.")


@strawberry.type(description="A page of nodes as a Relay connection.")
class NodeConnection:
    edges: list[NodeEdge] = strawberry.field(description="The nodes of this page, by id.")
    page_info: PageInfo = strawberry.field(description="Where this page stands in the list.")
    matching: strawberry.Private[NodeFilter]

    @strawberry.field(description="Nodes matching the filter, whatever page this is.")
    async def total_count(self, info: Info) -> int:
        where = self.matching
        return await info.context.snapshot.run(lambda conn: node_search.count_matching(conn, where))


async def connection(
    context: Context,
    where: NodeFilter,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> NodeConnection:
    """`first` nodes after `after`, or `last` nodes before `before`, in id order."""
    backward, size, cursor = relay_arguments(first, after, last, before)
    start = (
        context.cursors.decode_node(cursor, where, name="before" if backward else "after")
        if cursor
        else None
    )
    records, more = await context.snapshot.run(
        lambda conn: node_search.page(conn, where, start, size, backward=backward)
    )
    behind = False
    if start is not None:
        behind = await context.snapshot.run(
            lambda conn: node_search.any_from(conn, where, start, backward=not backward)
        )
    if backward:
        records.reverse()
    edges = [
        NodeEdge(cursor=context.cursors.encode_node(where, r.id), node=_node(r)) for r in records
    ]
    return NodeConnection(
        edges=edges,
        page_info=page_info([e.cursor for e in edges], more, behind, backward),
        matching=where,
    )


def _node(record: NodeRecord) -> Node:
    return cast("Node", record)  # records are Node's sources (graph.types.Node)
