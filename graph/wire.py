"""Leaf values other than GraphQL's, for a caller in this process that is not a GraphQL client.

The REST shim (`rest_shim.operations.REST_WIRE`) answers ids as JSON numbers, enums as the
vendor's lower-case values and an unknown sensor time as `""`. Reshaping GraphQL's answer into
that took a loop over every object of a page (0.5 ms for 2,000 nodes); with a `Wire` in the
context (`Context.wire`), results made straight from driver rows (`graph.execution`, its rows
path) come out in those values. Whatever is answered another way (a value that path does not
take, a single cluster) keeps GraphQL's values, so a caller takes both: within one object all
leaves are of one kind, and an `int` id says it is the wire's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, eq=False)
class Wire:
    """`int_ids`: an ID stored as an integer stays one. `enums`: an enum type's values become
    `enums[type name][member name]`. `nulls`: a null `(type name, field name)` becomes its
    value. Compared by identity: plans are cached per wire."""

    int_ids: bool = False
    enums: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    nulls: Mapping[tuple[str, str], Any] = field(default_factory=dict)
