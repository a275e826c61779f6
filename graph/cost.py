"""What an operation may cost, measured from its document before anything runs (SPEC §6).

Five figures, each against a limit of `OperationLimits`: the document's tokens (counted by the
parser, which stops at the limit: `graph.admission`), and for the operation that runs, its depth,
its aliases, its root fields and its nodes. Fragments and inline fragments count where they are
spread, as often as they are spread; `@include` and `@skip` are ignored (a field counts whether or
not it will be skipped). Introspection counts like any other field. And one rule that is no
setting: an operation carries at most one `reportCluster` (SPEC §3), counted the same way, so
that one request cannot register a fleet through aliases.

Nodes are counted the way GitHub's GraphQL API counts them: every list of objects multiplies what
it holds by the largest size it may have, and a list's objects are nodes. `clusters(limit:)` and
`clustersConnection(first:|last:)` hold up to their page size (their `clusters`/`edges` lists are
that page), `Cluster.nodes(first:)` up to `first` or 5,000 without it, and the introspection lists
(`types`, `fields`, `args`, ...) up to the longest such list of this schema. A page size given by
a variable is read from the request's variables, so the measure of a document is kept (by
`graph.admission`, with the parsed document) and only its page sizes are evaluated per request.
The largest legitimate request, REST's 100 clusters with all their nodes, is 100 + 100 * 5,000 =
500,100 nodes.

Every measure is linear in the document: a fragment is measured once, however often it is spread
(a chain of fragments each spreading the next twice would otherwise count for ever), and a
fragment that spreads itself (invalid; validation says so) counts nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
)
from graphql.type import GraphQLInputObjectType, GraphQLInterfaceType

from graph.errors import Code
from graph.operation_limits import OperationLimits
from models.limits import (
    COUNTED_PROVIDERS,
    DEFAULT_PAGE,
    MAX_NODES_FIRST,
    MAX_PAGE,
    MAX_SENSOR_VERSIONS,
)
from models.records import ControllerStatus, NodeStatus

DEFAULT_SENSOR_VERSIONS = 20  # `sensorVersions` without `first` (graph.summary)

# Fields that page, by (type, field): (size when no size argument is given, largest size).
PAGED: Mapping[tuple[str, str], tuple[int, int]] = {
    ("Query", "clusters"): (DEFAULT_PAGE, MAX_PAGE),
    ("Query", "clustersConnection"): (DEFAULT_PAGE, MAX_PAGE),
    ("Query", "nodes"): (DEFAULT_PAGE, MAX_PAGE),
    ("Cluster", "nodes"): (MAX_NODES_FIRST, MAX_NODES_FIRST),
    ("FleetSummary", "sensorVersions"): (DEFAULT_SENSOR_VERSIONS, MAX_SENSOR_VERSIONS),
}
# Lists of objects with no size argument, by (type, field): their largest size.
BOUNDED: Mapping[tuple[str, str], int] = {
    ("FleetSummary", "clustersByProvider"): COUNTED_PROVIDERS,
    ("FleetSummary", "clustersByControllerStatus"): len(ControllerStatus),
    ("FleetSummary", "nodesByStatus"): len(NodeStatus),
}
SIZE_ARGUMENTS = ("limit", "first", "last")
# Lists of objects whose size is the page size of the field above them (already counted).
SIZED_BY_PARENT = frozenset(
    {("ClusterPage", "clusters"), ("ClusterConnection", "edges"), ("NodeConnection", "edges")}
)
# An operation carries at most one report (SPEC §3): one request cannot register a fleet.
REPORT_FIELD = ("Mutation", "reportCluster")


# --- what is kept per operation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Paged:
    """A list of objects, each holding `inner`: as many as the largest of its size arguments
    (`constant` for those written in the document, then each variable's value, or its fallback
    when the request leaves it out), at least 1 and at most `largest`."""

    largest: int
    default: int  # the size when the argument is absent or null
    constant: int | None
    variables: tuple[tuple[str, int], ...]
    inner: tuple[_Term, ...]

    def size(self, variables: Mapping[str, Any]) -> int:
        sizes = [] if self.constant is None else [self.constant]
        for name, fallback in self.variables:
            value = variables.get(name, fallback)
            if value is None:
                value = self.default
            elif isinstance(value, bool) or not isinstance(value, int):
                value = self.largest  # not an Int: refused later, counted at its largest
            sizes.append(value)
        return max(1, min(max(sizes), self.largest))


@dataclass(frozen=True, slots=True)
class _Spread:
    fragment: str


_Term = _Paged | _Spread


@dataclass(slots=True)
class Measure:
    """One operation's figures; its nodes depend on the variables (`nodes`)."""

    depth: int
    aliases: int
    root_fields: int
    reports: int  # `reportCluster` fields, wherever they are spread
    terms: tuple[_Term, ...]
    fragments: Mapping[str, tuple[_Term, ...]]
    constant_nodes: int | None = None  # when no page size comes from a variable

    def nodes(self, variables: Mapping[str, Any] | None) -> int:
        if self.constant_nodes is not None:
            return self.constant_nodes
        return _count(self.terms, self.fragments, variables or {}, {}, set())


def _count(
    terms: Iterable[_Term],
    fragments: Mapping[str, tuple[_Term, ...]],
    variables: Mapping[str, Any],
    memo: dict[str, int],
    open_: set[str],
) -> int:
    total = 0
    for term in terms:
        if isinstance(term, _Paged):
            size = term.size(variables)
            total += size * (1 + _count(term.inner, fragments, variables, memo, open_))
        elif term.fragment in memo:
            total += memo[term.fragment]
        elif term.fragment in fragments and term.fragment not in open_:
            open_.add(term.fragment)
            memo[term.fragment] = _count(
                fragments[term.fragment], fragments, variables, memo, open_
            )
            open_.discard(term.fragment)
            total += memo[term.fragment]
    return total


def _variable_free(terms: Iterable[_Term], fragments: Mapping[str, tuple[_Term, ...]]) -> bool:
    seen: set[str] = set()
    stack = list(terms)
    while stack:
        term = stack.pop()
        if isinstance(term, _Paged):
            if term.variables:
                return False
            stack.extend(term.inner)
        elif term.fragment not in seen:
            seen.add(term.fragment)
            stack.extend(fragments.get(term.fragment, ()))
    return True


# --- measuring a document ---------------------------------------------------------------------


@dataclass(slots=True)
class _Figures:
    """A selection set's figures (a fragment's, kept to be added wherever it is spread)."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0  # at its own level: root fields, when it is the operation's
    reports: int = 0
    terms: list[_Term] = field(default_factory=list)


def introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """The longest list each introspection field of `schema` can return."""
    types = list(schema.type_map.values())
    with_fields = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    fields_ = [f for t in with_fields for f in t.fields.values()]
    args = [len(f.args) for f in fields_] + [len(d.args) for d in schema.directives]
    enums = [len(getattr(t, "values", {})) for t in types]
    inputs = [len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType)]
    interfaces = [len(t.interfaces) for t in with_fields]
    possible = [len(schema.get_possible_types(t)) for t in types if is_abstract_type(t)]

    def most(values: list[int]) -> int:
        return max([1, *values])

    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): most([len(schema.directives)]),
        ("__Type", "fields"): most([len(t.fields) for t in with_fields]),
        ("__Type", "inputFields"): most(inputs),
        ("__Type", "enumValues"): most(enums),
        ("__Type", "interfaces"): most(interfaces),
        ("__Type", "possibleTypes"): most(possible),
        ("__Field", "args"): most(args),
        ("__Directive", "args"): most(args),
    }


class _Measurer:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        sizes: Mapping[tuple[str, str], int],
        variable_defaults: Mapping[str, int],
    ) -> None:
        self.schema = schema
        self.variable_defaults = variable_defaults
        self.fragment_nodes = fragments
        self.sizes = sizes
        self.done: dict[str, _Figures] = {}
        self.open: set[str] = set()

    def fragment(self, name: str) -> _Figures:
        if name in self.done:
            return self.done[name]
        node = self.fragment_nodes.get(name)
        if node is None or name in self.open:
            return _Figures()  # unknown or cyclic: validation refuses it
        self.open.add(name)
        parent = self.schema.get_type(node.type_condition.name.value)
        figures = self.selections(node.selection_set, parent)
        self.open.discard(name)
        self.done[name] = figures
        return figures

    def selections(self, selection_set: SelectionSetNode, parent: Any) -> _Figures:
        out = _Figures()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent, out)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner_type = self.schema.get_type(condition.name.value) if condition else parent
                figures = self.selections(selection.selection_set, inner_type)
                self.add(out, figures)
                out.terms.extend(figures.terms)
            elif isinstance(selection, FragmentSpreadNode):
                figures = self.fragment(selection.name.value)
                self.add(out, figures)
                out.terms.append(_Spread(selection.name.value))
        return out

    @staticmethod
    def add(out: _Figures, other: _Figures) -> None:
        """`other`'s figures spread into `out`, at its level (the caller adds its terms)."""
        out.depth = max(out.depth, other.depth)
        out.aliases += other.aliases
        out.fields += other.fields
        out.reports += other.reports

    def field(self, node: FieldNode, parent: Any, out: _Figures) -> None:
        out.fields += 1
        out.aliases += node.alias is not None
        name = node.name.value
        definition = _field_definition(self.schema, parent, name)
        named: GraphQLNamedType | None = None
        if definition is not None:
            named = get_named_type(definition.type)
        inner = (
            self.selections(node.selection_set, named)
            if node.selection_set is not None
            else _Figures()
        )
        out.depth = max(out.depth, 1 + inner.depth)
        out.aliases += inner.aliases
        parent_name = getattr(parent, "name", None)
        out.reports += (parent_name, name) == REPORT_FIELD
        paged = self.paged(node, (parent_name or "", name), definition, inner.terms)
        if paged is not None:
            out.terms.append(paged)
        else:
            out.terms.extend(inner.terms)

    def paged(
        self, node: FieldNode, key: tuple[str, str], definition: Any, inner: list[_Term]
    ) -> _Paged | None:
        if key in PAGED:
            return self.page_sizes(node, *PAGED[key], tuple(inner))
        if key in self.sizes or key in BOUNDED:
            size = self.sizes.get(key) or BOUNDED[key]
            return _Paged(size, size, size, (), tuple(inner))
        if key in SIZED_BY_PARENT or definition is None:
            return None
        if isinstance(get_nullable_type(definition.type), GraphQLList) and isinstance(
            get_named_type(definition.type), GraphQLObjectType | GraphQLInterfaceType
        ):
            # A list of objects this module does not know: counted at one per item until
            # someone says how large it may be (tests/graph/test_cost.py checks none is left).
            return _Paged(1, 1, 1, (), tuple(inner))
        return None

    def page_sizes(
        self, node: FieldNode, default: int, largest: int, inner: tuple[_Term, ...]
    ) -> _Paged:
        written: list[int] = []
        variables: list[tuple[str, int]] = []
        for argument in node.arguments or ():
            if argument.name.value not in SIZE_ARGUMENTS:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                written.append(int(value.value))
            elif isinstance(value, VariableNode):
                name = value.name.value
                variables.append((name, self.variable_defaults.get(name, default)))
            elif isinstance(value, NullValueNode):
                written.append(default)
            else:
                written.append(largest)  # not an Int: refused later
        if not written and not variables:
            written.append(default)
        constant = max(written) if written else None
        return _Paged(largest, default, constant, tuple(variables), inner)


def _field_definition(schema: GraphQLSchema, parent: Any, name: str) -> Any:
    """The definition of field `name` of `parent`, or None (an unknown field, or __typename)."""
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    fields = getattr(parent, "fields", None)
    return fields.get(name) if isinstance(fields, Mapping) else None


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    sizes: Mapping[tuple[str, str], int],
) -> Measure:
    """The figures of `operation` (its fragments looked up in `fragments`)."""
    root = schema.get_root_type(operation.operation)
    defaults = {
        definition.variable.name.value: int(definition.default_value.value)
        for definition in operation.variable_definitions or ()
        if isinstance(definition.default_value, IntValueNode)
    }
    measurer = _Measurer(schema, fragments, sizes, defaults)
    figures = measurer.selections(operation.selection_set, root)
    terms = tuple(figures.terms)
    kept = {name: tuple(f.terms) for name, f in measurer.done.items()}
    result = Measure(figures.depth, figures.aliases, figures.fields, figures.reports, terms, kept)
    if _variable_free(terms, kept):
        result.constant_nodes = result.nodes({})
    return result


# --- refusing ---------------------------------------------------------------------------------


def refusal(limit: str, message: str, figure: int, maximum: int) -> GraphQLError:
    """A cost-limit refusal: BAD_USER_INPUT, naming the limit, the figure and the maximum."""
    return GraphQLError(
        message,
        extensions={
            "code": Code.BAD_USER_INPUT,
            "limit": limit,
            "figure": figure,
            "maximum": maximum,
        },
    )


def refusals(
    found: Measure, variables: Mapping[str, Any] | None, limits: OperationLimits
) -> list[GraphQLError]:
    """One error per limit the operation exceeds; none when it may run."""
    errors = []
    checks = (
        ("rootFields", found.root_fields, limits.max_root_fields, "root fields"),
        ("aliases", found.aliases, limits.max_aliases, "aliases"),
        ("depth", found.depth, limits.max_depth, "levels of fields"),
    )
    for limit, figure, maximum, what in checks:
        if figure > maximum:
            message = f"the operation has {figure:,} {what}; the limit is {maximum:,} ({limit})"
            errors.append(refusal(limit, message, figure, maximum))
    if found.reports > 1:
        message = (
            f"the operation has {found.reports:,} reportCluster fields; an operation carries "
            "at most 1 (reportCluster): send one report per request"
        )
        errors.append(refusal("reportCluster", message, found.reports, 1))
    nodes = found.nodes(variables)
    if nodes > limits.max_nodes:
        message = (
            f"the operation may return up to {nodes:,} nodes; the limit is "
            f"{limits.max_nodes:,} (nodes: each list counts at its largest size, its limit, "
            f"first or last, and nodes without first at {MAX_NODES_FIRST:,})"
        )
        errors.append(refusal("nodes", message, nodes, limits.max_nodes))
    return errors


def too_long(length: int, limits: OperationLimits) -> GraphQLError:
    maximum = limits.max_characters
    message = (
        f"the document has {length:,} characters; the limit is {maximum:,} (characters): "
        "send large inputs as variables"
    )
    return refusal("characters", message, length, maximum)


def too_many_tokens(limits: OperationLimits) -> GraphQLError:
    maximum = limits.max_tokens
    message = (
        f"the document has more than {maximum:,} tokens; the limit is {maximum:,} (tokens): "
        "send large inputs as variables"
    )
    return refusal("tokens", message, maximum + 1, maximum)
