"""Clusters and nodes as plain objects: what a row says (without the ORM) and what a report says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple


class ControllerStatus(StrEnum):
    """State of a cluster's runtime controller, as reported."""

    RUNNING = "running"
    STOPPED = "stopped"


class NodeStatus(StrEnum):
    """Monitoring state of one node (the vendor's five values)."""

    MONITORED = "monitored"
    MONITORED_WITH_SENSOR = "monitored_with_sensor"
    FAILED = "failed"
    INSTALLATION_FAILED = "installation_failed"
    DISABLED = "disabled"


RUNNING_STATUSES = frozenset({NodeStatus.MONITORED, NodeStatus.MONITORED_WITH_SENSOR})


class ClusterRecord(NamedTuple):
    """One live cluster as stored; the five counts always match its node rows."""

    id: int
    name: str
    monitored_at: datetime
    controller_version: str
    controller_status: str
    controller_last_updated: datetime
    provider: str
    regions: list[str]
    nodes_count: int
    running_nodes_count: int
    failed_nodes_count: int
    failed_to_install_nodes_count: int
    disabled_nodes_count: int


class NodeRecord(NamedTuple):
    """One node of a cluster as stored."""

    id: int
    cluster_id: int
    monitored_at: datetime
    name: str
    sensor_installed: bool
    sensor_last_updated: datetime | None
    sensor_version: str
    region: str
    architecture: str
    hostname: str
    internal_dns: str
    internal_ip: str
    status: str


@dataclass(slots=True, frozen=True)
class NodeCounts:
    """The five per-status counts of a cluster, derived from its nodes."""

    nodes: int = 0
    running: int = 0
    failed: int = 0
    failed_to_install: int = 0
    disabled: int = 0

    @classmethod
    def of(cls, statuses: list[str]) -> NodeCounts:
        return cls(
            nodes=len(statuses),
            running=sum(1 for s in statuses if s in RUNNING_STATUSES),
            failed=statuses.count(NodeStatus.FAILED),
            failed_to_install=statuses.count(NodeStatus.INSTALLATION_FAILED),
            disabled=statuses.count(NodeStatus.DISABLED),
        )


@dataclass(slots=True, frozen=True)
class NodeState:
    """One node as a controller (or the seeder) reports it."""

    name: str
    hostname: str
    status: NodeStatus
    sensor_installed: bool
    sensor_version: str = ""
    sensor_last_updated: datetime | None = None
    region: str = ""
    architecture: str = ""
    internal_dns: str = ""
    internal_ip: str = ""


@dataclass(slots=True, frozen=True)
class ClusterState:
    """The full state of one cluster as reported: after it applies, its nodes are exactly these."""

    name: str
    provider: str
    regions: list[str]
    controller_version: str
    controller_status: ControllerStatus
    nodes: list[NodeState]
