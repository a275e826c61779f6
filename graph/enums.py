"""The GraphQL enums: the domain's own enums, exposed with UPPER_CASE names."""

from __future__ import annotations

import strawberry

from models.listing import Direction, OrderField
from models.records import ControllerStatus, NodeStatus

# Registered in place, so that the domain enum is the GraphQL enum (values map both ways).
strawberry.enum(ControllerStatus, description="State of a cluster's runtime controller.")
strawberry.enum(
    NodeStatus,
    description=(
        "Monitoring state of a node. MONITORED and MONITORED_WITH_SENSOR count as running; "
        "FAILED, INSTALLATION_FAILED and DISABLED as unhealthy."
    ),
)

__all__ = ["ControllerStatus", "NodeStatus"]

strawberry.enum(
    OrderField,
    name="ClusterOrderField",
    description="What clusters are sorted by; ties are broken by id in the same direction.",
)
strawberry.enum(Direction, name="OrderDirection", description="ASC (smallest first) or DESC.")

__all__ += ["Direction", "OrderField"]
