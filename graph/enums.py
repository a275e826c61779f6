"""The GraphQL enums: the domain's own enums, exposed with UPPER_CASE names."""

from __future__ import annotations

import strawberry

from models.records import ControllerStatus as _ControllerStatus
from models.records import NodeStatus as _NodeStatus

ControllerStatus = strawberry.enum(
    _ControllerStatus, description="State of a cluster's runtime controller."
)
NodeStatus = strawberry.enum(
    _NodeStatus,
    description=(
        "Monitoring state of a node. MONITORED and MONITORED_WITH_SENSOR count as running; "
        "FAILED, INSTALLATION_FAILED and DISABLED as unhealthy."
    ),
)
