"""Input types of the mutations, and their checks: a report is refused whole, before any write."""

from __future__ import annotations

import ipaddress
from datetime import datetime

import strawberry

from graph.enums import ControllerStatus, NodeStatus
from models.errors import InvalidInput
from models.limits import (
    MAX_CLUSTER_NAME,
    MAX_NODES_PER_REPORT,
    MAX_PROVIDER,
    MAX_REGIONS,
    MAX_TEXT,
)
from models.records import ClusterState, NodeState


def _text(field: str, value: str, *, longest: int = MAX_TEXT, required: bool = True) -> str:
    if required and not value.strip():
        raise InvalidInput(f"{field} must not be empty")
    if len(value) > longest:
        raise InvalidInput(f"{field} is {len(value)} characters long; at most {longest} allowed")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidInput(f"{field} must not contain control characters")
    return value


def _ip(field: str, value: str) -> str:
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise InvalidInput(f"{field} {value!r} is not an IPv4 or IPv6 address") from None
    return value


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
        return NodeState(
            name=_text(f"{where}.name", self.name),
            hostname=_text(f"{where}.hostname", self.hostname),
            status=self.status,
            sensor_installed=self.sensor_installed,
            sensor_version=_text(
                f"{where}.sensorVersion", self.sensor_version or "", required=False
            ),
            sensor_last_updated=self.sensor_last_updated,
            region=_text(f"{where}.region", self.region or "", required=False),
            architecture=_text(f"{where}.architecture", self.architecture or "", required=False),
            internal_dns=_text(f"{where}.internalDns", self.internal_dns or "", required=False),
            internal_ip=_ip(f"{where}.internalIp", self.internal_ip or ""),
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
            name=_text("name", self.name, longest=MAX_CLUSTER_NAME),
            provider=_text("provider", self.provider, longest=MAX_PROVIDER),
            regions=[_text(f"regions[{i}]", r) for i, r in enumerate(self.regions)],
            controller_version=_text("controllerVersion", self.controller_version, required=False),
            controller_status=self.controller_status,
            nodes=nodes,
        )
