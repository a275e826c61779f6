"""Input types of the mutations, and their checks: a report is refused whole, before any write.

A report holds up to 5,000 nodes of ten fields each, so the per-field work here is kept small:
every text passes the text rules (`models.text`, one regular expression for ASCII), and
`ClusterReport` is built from the value graphql-core coerced by `_build_cluster_report` (see
there) rather than by Strawberry's generic conversion, which re-resolves every field's type for
every node (half a second a report).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.types.base import get_object_definition

from graph import executor
from graph.enums import ControllerStatus, NodeStatus
from models.errors import InvalidInput
from models.limits import (
    MAX_CLUSTER_NAME,
    MAX_NODES_PER_REPORT,
    MAX_PROVIDER,
    MAX_REGIONS,
)
from models.records import ClusterState, NodeState
from models.text import checked, checked_address

if TYPE_CHECKING:
    from strawberry.types.arguments import InputContext


@strawberry.input(description="One node as the controller sees it.")
class NodeReport:
    name: str = strawberry.field(description="Node name, unique within the report.")
    hostname: str = strawberry.field(description="Host name of the node.")
    status: NodeStatus = strawberry.field(description="Monitoring state of the node.")
    sensor_installed: bool = strawberry.field(description="Whether the sensor is installed.")
    sensor_version: str | None = strawberry.field(
        default=None, description="Sensor version; omitted or null when none."
    )
    sensor_last_updated: datetime | None = strawberry.field(
        default=None, description="Last update of the sensor (RFC 3339 with a time zone)."
    )
    region: str | None = strawberry.field(default=None, description="Region of the node.")
    architecture: str | None = strawberry.field(
        default=None, description="CPU architecture, e.g. amd64."
    )
    internal_dns: str | None = strawberry.field(default=None, description="Internal DNS name.")
    internal_ip: str | None = strawberry.field(
        default=None, description="Internal IPv4 or IPv6 address."
    )

    def to_state(self, where: str) -> NodeState:
        at = f"{where}."  # error messages name the field as nodes[i].name
        return NodeState(
            name=checked(f"{at}name", self.name),
            hostname=checked(f"{at}hostname", self.hostname),
            status=self.status,
            sensor_installed=self.sensor_installed,
            sensor_version=checked(f"{at}sensorVersion", self.sensor_version or "", required=False),
            sensor_last_updated=self.sensor_last_updated,
            region=checked(f"{at}region", self.region or "", required=False),
            architecture=checked(f"{at}architecture", self.architecture or "", required=False),
            internal_dns=checked(f"{at}internalDns", self.internal_dns or "", required=False),
            internal_ip=checked_address(f"{at}internalIp", self.internal_ip or ""),
        )


@strawberry.input(
    description="The full state of one cluster: after it applies, its nodes are exactly these."
)
class ClusterReport:
    name: str = strawberry.field(
        description="Cluster name (1 to 253 characters); registers it on first report."
    )
    provider: str = strawberry.field(description="Cloud provider, 1 to 64 characters.")
    regions: list[str] = strawberry.field(
        description="Regions; stored sorted and without duplicates."
    )
    controller_version: str = strawberry.field(description="Version of the reporting controller.")
    controller_status: ControllerStatus = strawberry.field(description="State of the controller.")
    nodes: list[NodeReport] = strawberry.field(
        description=f"Every node of the cluster, at most {MAX_NODES_PER_REPORT}, names unique."
    )

    def to_state(self) -> ClusterState:
        """The checked report; the first problem found is raised as `InvalidInput`."""
        if len(self.nodes) > MAX_NODES_PER_REPORT:
            raise InvalidInput(
                f"a report holds at most {MAX_NODES_PER_REPORT} nodes; "
                f"this one has {len(self.nodes)}"
            )
        if len(self.regions) > MAX_REGIONS:
            raise InvalidInput(f"a report holds at most {MAX_REGIONS} regions")
        nodes = [n.to_state(f"nodes[{i}]") for i, n in enumerate(self.nodes)]
        seen: set[str] = set()
        for i, node in enumerate(nodes):
            if node.name in seen:
                raise InvalidInput(
                    f"nodes[{i}].name {node.name!r} appears twice: node names must be unique"
                )
            seen.add(node.name)
        return ClusterState(
            name=checked("name", self.name, longest=MAX_CLUSTER_NAME),
            provider=checked("provider", self.provider, longest=MAX_PROVIDER),
            regions=[checked(f"regions[{i}]", r) for i, r in enumerate(self.regions)],
            controller_version=checked(
                "controllerVersion", self.controller_version, required=False
            ),
            controller_status=self.controller_status,
            nodes=nodes,
        )


def _names(cls: type, context: InputContext) -> list[tuple[str, str]]:
    """(name in the schema, Python name) of each field of an input type."""
    convert = context.config.name_converter.from_field
    return [(convert(f), f.python_name) for f in get_object_definition(cls, strict=True).fields]


def _build_cluster_report(
    cls: type[ClusterReport], value: Mapping[str, Any], context: InputContext
) -> ClusterReport:
    """`ClusterReport` with its `NodeReport`s from the value graphql-core coerced.

    Strawberry's `from_input` hook (`StrawberryObjectDefinition.from_input`): graphql-core has
    already checked and coerced every field (enums are `NodeStatus`/`ControllerStatus`, DateTime
    is parsed), and every field here is a scalar, an enum or a list of them, so Strawberry's own
    conversion would pass each value through unchanged; it only also looks every field's type up
    again for every node. Lists are copied, as Strawberry does (graphql-core may share defaults).
    Omitted optional fields keep the class defaults.
    """
    node_names = _names(NodeReport, context)
    fields = {py: value[gql] for gql, py in _names(cls, context) if gql in value}
    fields["regions"] = list(fields["regions"])
    fields["nodes"] = [
        NodeReport(**{py: node[gql] for gql, py in node_names if gql in node})
        for node in fields["nodes"]
    ]
    return cls(**fields)


# `from_input` is the hook Strawberry documents for this (`strawberry.pydantic` uses it), but only
# for integrations that create their own type definitions: `strawberry.input` takes no such
# argument, and building the definition ourselves would copy its field processing. So it is set
# on the definition `strawberry.input` made, and, like graph.execution's internals, only on the
# versions the tests ran on (`graph.executor`). NodeReport needs none: it is only ever built
# here, inside a ClusterReport.
if executor.problem() is None:
    get_object_definition(ClusterReport, strict=True).from_input = _build_cluster_report
