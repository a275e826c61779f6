"""An operation's collected selection sets, kept from one request to the next.

graphql-core collects a selection set's fields (fragments flattened, `@include`/`@skip` decided)
once per request and per selection, and the planned executor (`graph.execution`) then finds the
plan of each collected set. Both depend only on the schema, the operation and the values of the
variables its directives read: for the REST shim's operation, one `$withNodes`. So an executor
takes them from a `Collections` shared by every request that agrees on those, and a REST page
collects nothing after the first one (measured in-process: about 90 of a page's 2,200 Python
calls, the collection and the plans' look-ups).

Not shared (each request collects its own, as graphql-core does): subscriptions, whose collection
refuses `@skip`/`@include` at their root, and documents with fragment arguments, whose fields
depend on more than the directives' variables. A document parsed again makes new entries; at
most `KEPT` are kept, the least recently used dropped first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLSchema,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

from graph.kept import KeptByIdentity

KEPT = 256  # operations and directive values whose collections are kept


class Collections:
    """What one operation collected, for one set of its directives' variable values: the
    executor's memo of sub-selections (graphql-core's `_relevant_sub_fields`), the root's
    grouped field set, the plans made for each collected set (keyed by their identity, each
    entry keeping its set alive so that identity is not reused), and the whole operation's
    plan when it is a page (`graph.page_plan`)."""

    __slots__ = ("page", "plans", "roots", "shapes", "sub_fields")

    def __init__(self) -> None:
        self.sub_fields: dict[Any, Any] = {}
        self.roots: dict[Any, Any] = {}  # root type -> its grouped field set
        self.plans: dict[int, Any] = {}
        self.shapes: dict[int, Any] = {}
        # what `graph.page_plan` made of them, once: its plan, or False when it answers none
        self.page: Any = None


# Per schema, operation node, suggestion setting and directive values.
_KEPT: KeptByIdentity[Collections] = KeptByIdentity(KEPT)
# Per operation node: the names of the variables its directives read, each once; None when its
# fields depend on more (fragment arguments).
_DIRECTED: KeptByIdentity[tuple[str, ...] | None] = KeptByIdentity(KEPT)


def collections_for(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    coerced: dict[str, Any],
    hide_suggestions: bool,
) -> Collections | None:
    """The collections an operation's executor shares with earlier requests like it, or None
    when it collects its own."""
    if operation.operation == OperationType.SUBSCRIPTION:
        return None
    names = _directed(operation, fragments)
    if names is None:
        return None
    values = tuple((name, name in coerced, coerced.get(name)) for name in names)
    key = (id(schema), id(operation), hide_suggestions, values)
    try:
        return _KEPT.get_or_make(key, (schema, operation), Collections)
    except TypeError:  # a value that cannot be a key (directives take Booleans)
        return None


def _directed(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[str, ...] | None:
    def names() -> tuple[str, ...] | None:
        if any(f.variable_definitions for f in fragments.values()):
            return None
        sets = [operation.selection_set, *(f.selection_set for f in fragments.values())]
        return tuple(dict.fromkeys(_directive_variables(sets)))

    return _DIRECTED.get_or_make(id(operation), (operation,), names)


def _directive_variables(sets: Iterable[SelectionSetNode | None]) -> Iterator[str]:
    """The variables read by the directives of every selection in `sets`, at any depth."""
    pending = [s for s in sets if s is not None]
    while pending:
        for selection in pending.pop().selections:
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    yield from _variables(argument.value)
            inner = getattr(selection, "selection_set", None)
            if inner is not None:
                pending.append(inner)


def _variables(value: ValueNode) -> Iterator[str]:
    if isinstance(value, VariableNode):
        yield value.name.value
    elif isinstance(value, ListValueNode):
        for item in value.values:
            yield from _variables(item)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            yield from _variables(field.value)


__all__ = ["KEPT", "Collections", "collections_for"]
