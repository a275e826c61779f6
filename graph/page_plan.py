"""A whole operation answered by its plan: a query of one `clusters` page whose clusters are
plain columns (the REST shim's list page without nodes, or the same query sent to /graphql).

The planned executor (`graph.execution`) completes selection sets from plans made once, but an
operation still pays for graphql-core's executor around them: its build, the root's field with
its resolve info and Strawberry's resolver wrapper, an object per value completed and the
response. Measured in-process with the caches cold (interleaved A/B with the raw-driver floor,
300 rounds, `bench/README.md`), a REST page of 100 clusters without nodes answered by this
module took 0.27 to 0.39 ms less in three runs (of 2.5 to 3.9 ms), the same page at /graphql
0.3 ms less: most of what kept it above 1.3x the floor. Such an operation is recognised once
per document (`_planned`), and answered here: its variables coerced as the planned executor
coerces them, its fields collected by graphql-core and kept as the executor keeps them
(`graph.collections_kept`), the page read by the very function the resolver calls
(`graph.pagination.clusters_page`), and its clusters made into dicts by the code the executor
generates for their rows (`graph.execution`).

It answers only what it answers as the executor would, and hands everything else to the
executor unchanged (`answer_page` gives None): variables or arguments that do not coerce, a
`filter`, a selection beyond `totalCount`, `pagination { limit nextKey }`, the clusters' plain
columns and `__typename`, a token without Admin, a stored value the rows' code does not take as
it is. The executor then reads again in the same snapshot and answers with its own data and
errors. A page read that raises (a bad `nextKey`, a database that cannot answer) is answered
here, as graphql-core answers it: the error located at the root field, no data. Either way
the answer is the stock executor's (`tests/graph/test_page_plan.py` compares them).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    located_error,
)
from graphql.execution.collect_fields import FragmentDetails, collect_fields, collect_subfields
from graphql.execution.values import VariableValues, get_argument_values

from graph import pagination
from graph.collections_kept import Collections, collections_for
from graph.context import Context
from graph.execution import plain_selection, rows_factory
from graph.kept import KeptByIdentity
from graph.variables import PLANNING, planned_variable_values
from graph.wire import Wire
from models.listing import ClusterFilter, Order
from models.tokens import Permission

PLANS_KEPT = 256  # documents (with an operation name) whose plan, or its absence, is kept
_ROOT_FIELD = "clusters"
_PAGE_FIELDS = frozenset({"totalCount", "pagination", "clusters", "__typename"})
_PAGINATION_FIELDS = frozenset({"limit", "nextKey", "__typename"})
MAX_COERCION_ERRORS = 50  # as graphql-core's executor coerces variables by default


class _Planned:
    """A document's operation that may be a page (`_planned`): what its requests share."""

    __slots__ = ("definitions", "fragments", "operation")

    def __init__(
        self, operation: OperationDefinitionNode, definitions: dict[str, FragmentDefinitionNode]
    ) -> None:
        self.operation = operation
        self.definitions = definitions  # as `collections_for` takes them
        self.fragments = {  # as graphql-core's collection takes them (no fragment variables)
            name: FragmentDetails(definition, None) for name, definition in definitions.items()
        }


_PLANS: KeptByIdentity[_Planned | None] = KeptByIdentity(PLANS_KEPT)


def _planned(document: DocumentNode, operation_name: str | None) -> _Planned | None:
    """The operation of `document` that graphql-core would run, when it is a query whose
    selection is one `clusters` field without directives (what it selects below is decided per
    request, once its variables are known); None otherwise."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None  # graphql-core says what is wrong
    operation = operations[0]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    selections = operation.selection_set.selections
    if (
        operation.operation != OperationType.QUERY
        or operation.directives
        or any(f.variable_definitions for f in fragments.values())
        or len(selections) != 1
        or not isinstance(selections[0], FieldNode)
        or selections[0].name.value != _ROOT_FIELD
        or selections[0].directives
    ):
        return None
    return _Planned(operation, fragments)


class _Page:
    """What one collection of a page operation answers (decided once, `_page_of`): the root's
    response key and field details, then the page's fields in the response's order, each a
    response key and its kind (`_PAGE_FIELDS`) with, for `pagination`, its own fields' keys
    and names; the clusters' shape (response keys and field names); whether it counts."""

    __slots__ = ("clusters", "counted", "fdl", "fields", "key")

    def __init__(
        self,
        key: str,
        fdl: Any,
        fields: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...],
        clusters: tuple[tuple[str, str], ...],
    ) -> None:
        self.key = key
        self.fdl = fdl
        self.fields = fields
        self.clusters = clusters
        self.counted = any(name == "totalCount" for _, name, _ in fields)


async def answer_page(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    raw_variables: dict[str, Any] | None,
    context: Any,
) -> ExecutionResult | None:
    """The operation's result, when it is a page this module answers (see above); None when the
    executor must answer it."""
    planned = _PLANS.get_or_make(
        (id(document), operation_name), (document,), lambda: _planned(document, operation_name)
    )
    if planned is None or not isinstance(context, Context):
        return None
    if not context.principal.may(Permission.ADMIN):
        return None  # the field's permission answers
    operation = planned.operation
    token = PLANNING.set(True)
    try:
        variables = planned_variable_values(
            schema, operation.variable_definitions or (), raw_variables or {}, MAX_COERCION_ERRORS
        )
    finally:
        PLANNING.reset(token)
    if isinstance(variables, list):
        return None
    kept = collections_for(schema, operation, planned.definitions, variables.coerced, False)
    if kept is None:
        return None
    plan = kept.page
    if plan is None:
        plan = kept.page = _page_of(schema, planned, variables, kept) or False
    if plan is False:
        return None
    query_type = schema.query_type
    assert query_type is not None  # `_page_of` found the field there
    try:
        arguments = get_argument_values(query_type.fields[_ROOT_FIELD], plan.fdl[0].node, variables)
    except Exception:
        return None  # graphql-core reports it
    if arguments.get("filter") is not None:
        return None
    try:
        page = await pagination.clusters_page(
            context,
            arguments["limit"],
            arguments.get("nextKey"),
            ClusterFilter(),
            Order(arguments["orderBy"], arguments["direction"]),
            counted=plan.counted,
        )
    except Exception as exc:
        # As graphql-core answers a resolver's error on a non-null root field: located there,
        # and no data. (Reading again would not do: on PostgreSQL a failed statement, a
        # timeout, aborts the snapshot's transaction.)
        nodes = [details.node for details in plan.fdl]
        return ExecutionResult(data=None, errors=[located_error(exc, nodes, [plan.key])])
    try:
        out = _page_data(schema, plan, page, getattr(context, "wire", None))
    except Exception:  # a count beyond Int's range: graphql-core's error
        return None
    if out is None:
        return None  # a stored value the rows' code does not take as it is
    return ExecutionResult(data={plan.key: out}, errors=None)


def _page_data(
    schema: GraphQLSchema, plan: _Page, page: pagination.ClusterPage, wire: Wire | None
) -> dict[str, Any] | None:
    """The page's answer, in the response's order; None when a cluster's stored value is one
    the rows' code does not take as it is."""
    out: dict[str, Any] = {}
    for response_key, name, sub in plan.fields:
        if name == "clusters":
            rows = page.clusters
            made = rows_factory(
                _object(schema, "Cluster"),
                plan.clusters,
                rows.codec,  # type: ignore[attr-defined]  # a Rows
                wire,
            )
            dicts = None if made is None else made(rows.rows)  # type: ignore[attr-defined]
            if dicts is None:
                return None
            out[response_key] = dicts
        elif name == "totalCount":
            out[response_key] = GraphQLInt.serialize(page.counted)
        elif name == "pagination":
            out[response_key] = _pagination(page.pagination, sub)
        else:
            out[response_key] = "ClusterPage"
    return out


def _page_of(
    schema: GraphQLSchema, planned: _Planned, variables: VariableValues, kept: Collections
) -> _Page | None:
    """The page plan of one collection of `planned`, or None when it selects more than plain
    fields (see above)."""
    query_type = schema.query_type
    if query_type is None:
        return None
    roots = kept.roots.get(query_type)
    if roots is None:
        roots = collect_fields(schema, planned.fragments, variables, query_type, planned.operation)[
            0
        ]
        roots = kept.roots.setdefault(query_type, roots)
    if len(roots) != 1:
        return None
    ((key, fdl),) = roots.items()
    fields = []
    clusters: tuple[tuple[str, str], ...] = ()
    for response_key, (name, sub) in _sub_fields(
        schema, planned, variables, kept, _object(schema, "ClusterPage"), fdl
    ).items():
        if name not in _PAGE_FIELDS:
            return None
        below: tuple[tuple[str, str], ...] = ()
        if name == "clusters":
            cluster_type = _object(schema, "Cluster")
            found = _sub_fields(schema, planned, variables, kept, cluster_type, sub)
            clusters = tuple((k, n) for k, (n, _) in found.items())
            if not plain_selection(cluster_type, clusters):
                return None  # nodes, or a resolver: the executor's
        elif name == "pagination":
            found = _sub_fields(
                schema, planned, variables, kept, _object(schema, "Pagination"), sub
            )
            below = tuple((k, n) for k, (n, _) in found.items())
            if any(n not in _PAGINATION_FIELDS for _, n in below):
                return None
        fields.append((response_key, name, below))
    return _Page(key, fdl, tuple(fields), clusters)


def _object(schema: GraphQLSchema, name: str) -> GraphQLObjectType:
    found = schema.get_type(name)
    assert isinstance(found, GraphQLObjectType)
    return found


def _sub_fields(
    schema: GraphQLSchema,
    planned: _Planned,
    variables: VariableValues,
    kept: Collections,
    parent_type: GraphQLObjectType,
    fdl: Any,
) -> dict[str, tuple[str, Any]]:
    """The collected selection of `fdl` on `parent_type`: response key -> (field name, its
    field details), memoised in `kept` as the executor memoises it."""
    memo = kept.sub_fields
    memo_key = (parent_type, id(fdl))
    found = memo.get(memo_key)
    if found is None:
        collected = collect_subfields(
            schema, planned.fragments, variables, planned.operation, parent_type, fdl
        )
        found = memo[memo_key] = (fdl, collected)
    grouped = found[1][0]
    return {k: (v[0].node.name.value, v) for k, v in grouped.items()}


def _pagination(
    given: pagination.Pagination, fields: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in fields:
        if name == "limit":
            out[key] = GraphQLInt.serialize(given.limit)
        elif name == "nextKey":
            out[key] = None if given.next_key is None else GraphQLString.serialize(given.next_key)
        else:
            out[key] = "Pagination"
    return out
