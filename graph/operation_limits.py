"""How much one operation may cost and how long it may run: one value per app, in the context.

Each figure is a setting (`clusterql.settings`, README "Configuration"); `graph.cost` says how
each is measured and why its default is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OperationLimits:
    max_tokens: int = 2_000
    max_characters: int = 65_536
    max_depth: int = 20
    max_aliases: int = 50
    max_root_fields: int = 10
    max_nodes: int = 600_000
    timeout_s: float = 15.0


DEFAULT_LIMITS = OperationLimits()
