"""Variable values coerced by a plan made once per operation, for the planned executor.

graphql-core coerces an operation's variables afresh for every request: for each variable
definition it resolves the type from the document again (`get_variable_signature`), checks the
value's nesting, then coerces it. A REST page's operation declares six variables, so that was
about a tenth of the executor's work per page without nodes (cProfile). The signatures depend
only on the schema and the operation, so they are resolved once and kept; per request what is
left is the value itself. Values of the common kinds take a short way: a null for a nullable
variable is null, a scalar's or enum's value is its type's own `coerce_input_value`, exactly as
graphql-core's `coerce_input_value` would call it (a default matters only for a value not
given). A variable not given is what graphql-core makes of it too: left out when it is
nullable and has no default, else, for a scalar or an enum, its default as
`coerce_default_value` gives it (graphql-core keeps that on the kept signature's default: a
value nothing changes). Anything else (a non-null variable not given and without a default, a
default of a list or an input object, a list, an input object, a value the type refuses, a
definition whose type is not an input type, a default that fails to coerce) is coerced by
graphql-core's `get_variable_values` from the start, so every error it reports is its own.

A `/graphql` client sends only the variables it sets (the REST shim sends them all), so without
the way for those not given, a page whose operation declares defaults it does not override took
graphql-core's coercion every time.

Only the planned executor's `build` uses this (it sets `PLANNING`): graphql-core's executor
module looks the function up when it builds, and the stock executor, which tests compare the
planned one with, keeps graphql-core's.
"""

from __future__ import annotations

from collections.abc import Collection
from contextvars import ContextVar
from typing import Any

import graphql.execution.executor as _executor
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
    VariableDefinitionNode,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource, get_variable_values
from graphql.utilities.coerce_input_value import coerce_default_value

from graph.kept import KeptByIdentity

PLANS_KEPT = 256  # operations whose variables' plans are kept (the least recently used dropped)

# One variable: its signature, whether its type is non-null, and its leaf type (None: not a
# scalar or enum, so never the short way).
_Step = tuple[GraphQLVariableSignature, bool, GraphQLScalarType | GraphQLEnumType | None]
_PLANS: KeptByIdentity[tuple[_Step, ...] | None] = KeptByIdentity(PLANS_KEPT)
# True while the planned executor builds (`PlannedExecutor.build` sets it)
PLANNING: ContextVar[bool] = ContextVar("clusterql_planning_variables", default=False)


def _plan(
    schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
) -> tuple[_Step, ...] | None:
    """The steps of `definitions`, or None when one of them has no signature (graphql-core
    reports that)."""
    steps: list[_Step] = []
    for definition in definitions:
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError):
            return None
        type_ = signature.type
        non_null = isinstance(type_, GraphQLNonNull)
        bare = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        leaf = bare if isinstance(bare, GraphQLScalarType | GraphQLEnumType) else None
        steps.append((signature, non_null, leaf))
    return tuple(steps)


def _steps(
    schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
) -> tuple[_Step, ...] | None:
    key = (id(schema), id(definitions))
    return _PLANS.get_or_make(key, (schema, definitions), lambda: _plan(schema, definitions))


def planned_variable_values(
    schema: GraphQLSchema,
    var_def_nodes: Collection[VariableDefinitionNode],
    inputs: dict[str, Any],
    max_errors: int | None = None,
    hide_suggestions: bool = False,
) -> list[GraphQLError] | VariableValues:
    """What `get_variable_values` returns for these arguments, by the operation's plan when
    every value is of a kind it takes (see above), else by `get_variable_values` itself."""
    steps = _steps(schema, var_def_nodes) if PLANNING.get() else None
    if steps is None:
        return get_variable_values(schema, var_def_nodes, inputs, max_errors, hide_suggestions)
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for signature, non_null, leaf in steps:
        name = signature.name
        value = inputs.get(name, Undefined)
        if value is Undefined and signature.default is None and not non_null:
            sources[name] = VariableValueSource(signature)  # left out
            continue
        if value is Undefined:
            if signature.default is None or leaf is None:
                break
            try:
                default = coerce_default_value(signature)
            except Exception:  # graphql-core's coercion then says what is wrong
                break
            sources[name] = VariableValueSource(signature)
            if default is not Undefined:
                coerced[name] = default
            continue
        if value is None and not non_null:
            x: Any = None
        elif value is None or leaf is None:
            break
        else:
            try:
                x = leaf.coerce_input_value(value)
            except Exception:  # graphql-core's coercion then says what is wrong
                break
            if x is Undefined:
                break
        sources[name] = VariableValueSource(signature, value)
        coerced[name] = x
    else:
        return VariableValues(sources, coerced)
    # a value the plan does not take: graphql-core coerces them all, and says what is wrong
    return get_variable_values(schema, var_def_nodes, inputs, max_errors, hide_suggestions)


# graphql-core's executor calls its module's `get_variable_values` when it builds; outside
# the planned executor's `build` this is that same function.
_executor.get_variable_values = planned_variable_values  # type: ignore[attr-defined]
