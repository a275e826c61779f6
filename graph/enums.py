"""The GraphQL enums: the domain's own enums, exposed with UPPER_CASE names.

Registered in place, so that the domain enum is the GraphQL enum (values map both ways, with no
conversion per node). Strawberry keeps its definition on the enum class whichever way an enum is
given to it (`strawberry.enum(cls)`, the decorator, or `Annotated[cls, strawberry.enum(...)]`,
which it applies when it builds the schema): there is no hook that leaves the class untouched,
and a second set of enums would spell the same values twice and convert them at every boundary.
"""

from __future__ import annotations

import strawberry

from models.changes import ChangeKind
from models.listing import Direction, OrderField
from models.records import ControllerStatus, NodeStatus

strawberry.enum(ControllerStatus, description="State of a cluster's runtime controller.")
strawberry.enum(
    NodeStatus,
    description=(
        "Monitoring state of a node. MONITORED and MONITORED_WITH_SENSOR count as running; "
        "FAILED, INSTALLATION_FAILED and DISABLED as unhealthy."
    ),
)
strawberry.enum(
    OrderField,
    name="ClusterOrderField",
    description="What clusters are sorted by; ties are broken by id in the same direction.",
)
strawberry.enum(Direction, name="OrderDirection", description="ASC (smallest first) or DESC.")
strawberry.enum(
    ChangeKind,
    name="ClusterChangeKind",
    description=(
        "What happened to a cluster: REGISTERED (its first report), UPDATED (a later report), "
        "REMOVED, or STALE (no report for longer than the staleness threshold)."
    ),
)

__all__ = ["ChangeKind", "ControllerStatus", "Direction", "NodeStatus", "OrderField"]
