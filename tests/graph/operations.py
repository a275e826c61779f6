"""Random valid operations over any schema, for comparing executors.

hypothesis-graphql draws the skeleton: which fields, how deep, literal arguments. It writes no
variables, aliases, named fragments or directives, and no introspection, so each drawn document is
then rewritten, node by node, through graphql-core's AST:

- arguments: replaced by values the caller knows to be interesting (ids that exist, cursors,
  page sizes at and past their bounds), left out (their default applies), or lifted into
  variables, at the top or inside input objects and lists, with or without a default;
- fields: aliased, selected twice under two response keys (with arguments drawn anew), given
  `@include`/`@skip` with a literal or a variable condition;
- selection sets: `__typename` added, parts wrapped in inline fragments (with or without a type
  condition) or moved into named fragments, or the same selections spread through two fragments
  (whole or overlapping), so that graphql-core must merge them;
- the query root: `__schema`/`__type` selections, themselves drawn by hypothesis-graphql over
  the introspection types and rewritten the same way;
- the document: sometimes two named operations, each run by name.

Each operation comes with two assignments of its variables: the second flips every directive
condition and may redraw argument values, so an executor that plans a document once is run on
the same document with other variables.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import graphql as g
import hypothesis_graphql
from graphql.pyutils import Undefined
from hypothesis import strategies as st

Json = Any
# Interesting JSON values for an argument: (parent type, field, argument) -> strategy, or None.
ArgumentValues = Callable[[str, str, str], "st.SearchStrategy[Json] | None"]
ScalarNodes = dict[str, st.SearchStrategy[g.ValueNode]]  # hypothesis-graphql's custom_scalars


def no_values(parent: str, field_name: str, argument: str) -> st.SearchStrategy[Json] | None:
    return None


@dataclass(frozen=True, slots=True)
class Run:
    operation_name: str | None
    variables: dict[str, Json]


@dataclass(frozen=True, slots=True)
class Operation:
    """A document and how to run it: each run names an operation and gives its variables."""

    document: str
    runs: tuple[Run, ...]


def _document(node: g.DocumentNode) -> g.DocumentNode:
    return node


def _root_selections(document: g.DocumentNode) -> tuple[g.SelectionNode, ...]:
    operation = document.definitions[0]
    assert isinstance(operation, g.OperationDefinitionNode)
    return tuple(operation.selection_set.selections)


def _introspection_root() -> g.GraphQLSchema:
    """A schema whose root fields stand for `__schema` and `__type` (renamed once drawn)."""
    schema_type = cast(g.GraphQLObjectType, g.introspection_types["__Schema"])
    type_type = cast(g.GraphQLObjectType, g.introspection_types["__Type"])
    name = g.GraphQLArgument(g.GraphQLNonNull(g.GraphQLString))
    root = g.GraphQLObjectType(
        "IntrospectionRoot",
        {
            "schema": g.GraphQLField(g.GraphQLNonNull(schema_type)),
            "type": g.GraphQLField(type_type, {"name": name}),
        },
    )
    return g.GraphQLSchema(query=root)


# graphql-core refuses introspection that nests these lists three deep (MaxIntrospectionDepthRule).
_INTROSPECTION_LISTS = frozenset({"fields", "interfaces", "possibleTypes", "inputFields"})
_DEEPEST_LIST = 2


def _shallow(nodes: Sequence[g.SelectionNode], depth: int) -> tuple[g.SelectionNode, ...]:
    kept: list[g.SelectionNode] = []
    for node in nodes:
        assert isinstance(node, g.FieldNode)
        inner = depth + (node.name.value in _INTROSPECTION_LISTS)
        if inner > _DEEPEST_LIST:
            continue
        selection_set = node.selection_set and g.SelectionSetNode(
            selections=_shallow(node.selection_set.selections, inner)
        )
        kept.append(
            g.FieldNode(
                alias=node.alias,
                name=node.name,
                arguments=node.arguments,
                directives=node.directives,
                selection_set=selection_set,
            )
        )
    return tuple(kept) or (g.FieldNode(name=g.NameNode(value="__typename")),)


def _as_meta_field(node: g.SelectionNode) -> g.SelectionNode:
    """`schema { ... }` as `__schema { ... }`, nested no deeper than graphql-core allows."""
    assert isinstance(node, g.FieldNode)
    assert node.selection_set is not None
    return g.FieldNode(
        alias=node.alias,
        name=g.NameNode(value=f"__{node.name.value}"),
        arguments=node.arguments,
        directives=node.directives,
        selection_set=g.SelectionSetNode(selections=_shallow(node.selection_set.selections, 0)),
    )


def introspection_selections() -> st.SearchStrategy[tuple[g.SelectionNode, ...]]:
    drawn = hypothesis_graphql.queries(_introspection_root(), print_ast=_document)
    return drawn.map(lambda d: tuple(_as_meta_field(s) for s in _root_selections(d)))


def operations(
    schema: g.GraphQLSchema,
    *,
    mutation: bool = False,
    values: ArgumentValues = no_values,
    custom_scalars: ScalarNodes | None = None,
) -> st.SearchStrategy[Operation]:
    """Operations on the query root (or the mutation root) of `schema`."""
    draw_root = hypothesis_graphql.mutations if mutation else hypothesis_graphql.queries
    skeletons = draw_root(
        schema, print_ast=_document, custom_scalars=custom_scalars, allow_x00=False
    ).map(_root_selections)
    root = schema.mutation_type if mutation else schema.query_type
    assert root is not None
    extra = st.just(()) if mutation else introspection_selections()
    kind = g.OperationType.MUTATION if mutation else g.OperationType.QUERY

    @st.composite
    def build(draw: st.DrawFn) -> Operation:
        names = itertools.count(1)
        fragments: list[g.FragmentDefinitionNode] = []
        count = 2 if draw(st.integers(0, 9)) >= 8 else 1
        named = count > 1 or draw(st.booleans())
        definitions: list[g.OperationDefinitionNode] = []
        runs: list[Run] = []
        for i in range(count):
            selections = draw(skeletons)
            if draw(st.integers(0, 9)) >= 8:
                selections += draw(extra)
            rewriter = _Rewriter(draw, schema, values, names, fragments)
            rewritten = rewriter.selections(root, selections)
            name = f"Operation{i + 1}" if named else None
            definitions.append(
                g.OperationDefinitionNode(
                    operation=kind,
                    name=g.NameNode(value=name) if name else None,
                    variable_definitions=tuple(rewriter.definitions),
                    directives=(),
                    selection_set=g.SelectionSetNode(selections=tuple(rewritten)),
                )
            )
            run_by = name if count > 1 or draw(st.booleans()) else None
            runs.append(Run(run_by, rewriter.first))
            if rewriter.second != rewriter.first:
                runs.append(Run(run_by, rewriter.second))
        document = g.DocumentNode(definitions=(*definitions, *fragments))
        return Operation(document=g.print_ast(document), runs=tuple(runs))

    return build()


def _literal(value: Json, type_: g.GraphQLType) -> g.ValueNode:
    """`value` (as JSON) written as a literal of `type_`."""
    named = type_.of_type if isinstance(type_, g.GraphQLNonNull) else type_
    if value is None:
        return g.NullValueNode()
    if isinstance(value, bool):
        return g.BooleanValueNode(value=value)
    if isinstance(value, int):
        return g.IntValueNode(value=str(value))
    if isinstance(value, float):
        return g.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        if isinstance(named, g.GraphQLEnumType):
            return g.EnumValueNode(value=value)
        return g.StringValueNode(value=value)
    if isinstance(value, list):
        item = named.of_type if isinstance(named, g.GraphQLList) else named
        return g.ListValueNode(values=tuple(_literal(v, item) for v in value))
    assert isinstance(value, dict)
    fields = named.fields if isinstance(named, g.GraphQLInputObjectType) else {}
    return g.ObjectValueNode(
        fields=tuple(
            g.ObjectFieldNode(
                name=g.NameNode(value=k),
                value=_literal(v, fields[k].type if k in fields else named),
            )
            for k, v in value.items()
        )
    )


def _meta_field(parent: g.GraphQLNamedType, name: str) -> g.GraphQLField:
    if name == "__typename":
        return g.TypeNameMetaFieldDef
    if name == "__schema":
        return g.SchemaMetaFieldDef
    if name == "__type":
        return g.TypeMetaFieldDef
    assert isinstance(parent, g.GraphQLObjectType | g.GraphQLInterfaceType)
    return cast(g.GraphQLField, parent.fields[name])


@dataclass
class _Rewriter:
    """Rewrites the selections of one operation; collects its variables as it goes."""

    draw: st.DrawFn
    schema: g.GraphQLSchema
    values: ArgumentValues
    names: itertools.count[int]
    fragments: list[g.FragmentDefinitionNode]
    definitions: list[g.VariableDefinitionNode] = field(default_factory=list)
    first: dict[str, Json] = field(default_factory=dict)
    second: dict[str, Json] = field(default_factory=dict)

    def chance(self, percent: int) -> bool:
        # Shrinks towards 0, i.e. towards leaving the skeleton as hypothesis-graphql drew it.
        return bool(self.draw(st.integers(0, 99)) >= 100 - percent)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    # --- selection sets

    def selections(
        self, parent: g.GraphQLNamedType, nodes: Sequence[g.SelectionNode]
    ) -> list[g.SelectionNode]:
        out: list[g.SelectionNode] = []
        for node in nodes:
            if isinstance(node, g.FieldNode):
                out.extend(self.field(parent, node))
            else:
                assert isinstance(node, g.InlineFragmentNode)
                on = node.type_condition
                inner = parent if on is None else self.schema.get_type(on.name.value)
                assert inner is not None
                selected = self.selections(inner, node.selection_set.selections)
                out.append(self.inline(inner, selected, type_condition=on))
        if self.chance(25):
            out.insert(self.draw(st.integers(0, len(out))), self.typename())
        return self.regroup(parent, out, rounds=2)

    def typename(self) -> g.FieldNode:
        alias = g.NameNode(value=self.fresh("t")) if self.chance(30) else None
        return g.FieldNode(
            alias=alias, name=g.NameNode(value="__typename"), directives=self.directives()
        )

    def regroup(
        self, parent: g.GraphQLNamedType, nodes: list[g.SelectionNode], rounds: int
    ) -> list[g.SelectionNode]:
        if not nodes or rounds == 0 or not self.chance(35):
            return nodes
        start = self.draw(st.integers(0, len(nodes) - 1))
        end = self.draw(st.integers(start + 1, len(nodes)))
        part = nodes[start:end]
        how = self.draw(st.sampled_from(["inline", "named", "twice"]))
        wrapped: list[g.SelectionNode]
        if how == "inline":
            wrapped = [self.inline(parent, part)]
        elif how == "named":
            wrapped = [self.spread(parent, part)]
        else:  # the same selections through two fragments: whole, or overlapping
            middle = self.draw(st.integers(start, end - 1))
            wrapped = [self.fragment(parent, part), self.fragment(parent, nodes[middle:end])]
        return self.regroup(parent, [*nodes[:start], *wrapped, *nodes[end:]], rounds - 1)

    def fragment(
        self, parent: g.GraphQLNamedType, nodes: Sequence[g.SelectionNode]
    ) -> g.SelectionNode:
        return (
            self.spread(parent, nodes) if self.draw(st.booleans()) else self.inline(parent, nodes)
        )

    def inline(
        self,
        parent: g.GraphQLNamedType,
        nodes: Sequence[g.SelectionNode],
        type_condition: g.NamedTypeNode | None = None,
    ) -> g.InlineFragmentNode:
        if type_condition is None and self.draw(st.booleans()):
            type_condition = g.NamedTypeNode(name=g.NameNode(value=parent.name))
        return g.InlineFragmentNode(
            type_condition=type_condition,
            directives=self.directives(),
            selection_set=g.SelectionSetNode(selections=tuple(nodes)),
        )

    def spread(
        self, parent: g.GraphQLNamedType, nodes: Sequence[g.SelectionNode]
    ) -> g.FragmentSpreadNode:
        name = g.NameNode(value=self.fresh("F"))
        self.fragments.append(
            g.FragmentDefinitionNode(
                name=name,
                type_condition=g.NamedTypeNode(name=g.NameNode(value=parent.name)),
                directives=(),
                selection_set=g.SelectionSetNode(selections=tuple(nodes)),
            )
        )
        return g.FragmentSpreadNode(name=name, directives=self.directives())

    # --- fields

    def field(self, parent: g.GraphQLNamedType, node: g.FieldNode) -> list[g.FieldNode]:
        definition = _meta_field(parent, node.name.value)
        copies = [self.field_copy(parent, node, definition, node.alias)]
        if self.chance(10):  # the same field again under another response key
            again = g.NameNode(value=self.fresh("a"))
            copies.insert(
                self.draw(st.integers(0, 1)),
                self.field_copy(parent, node, definition, again),
            )
        return copies

    def field_copy(
        self,
        parent: g.GraphQLNamedType,
        node: g.FieldNode,
        definition: g.GraphQLField,
        alias: g.NameNode | None,
    ) -> g.FieldNode:
        arguments = self.arguments(parent, node, definition)
        selection_set = None
        if node.selection_set is not None:
            child = g.get_named_type(definition.type)
            selected = self.selections(child, node.selection_set.selections)
            selection_set = g.SelectionSetNode(selections=tuple(selected))
        if alias is None and self.chance(15):
            alias = g.NameNode(value=self.fresh("a"))
        return g.FieldNode(
            alias=alias,
            name=node.name,
            arguments=tuple(arguments),
            directives=self.directives(),
            selection_set=selection_set,
        )

    def directives(self) -> tuple[g.DirectiveNode, ...]:
        chosen = []
        for name in ("include", "skip"):
            if self.chance(12):
                chosen.append(
                    g.DirectiveNode(
                        name=g.NameNode(value=name),
                        arguments=(
                            g.ArgumentNode(name=g.NameNode(value="if"), value=self.condition()),
                        ),
                    )
                )
        return tuple(chosen)

    def condition(self) -> g.ValueNode:
        """`true`, `false`, or a Boolean variable (flipped in the second assignment)."""
        value = self.draw(st.booleans())
        if self.chance(40):
            return g.BooleanValueNode(value=value)
        name = self.fresh("c")
        if self.chance(30):  # nullable, with a default the first assignment relies on
            self.declare(name, "Boolean", default=g.BooleanValueNode(value=value))
        else:
            self.declare(name, "Boolean!")
            self.first[name] = value
        self.second[name] = not value
        return g.VariableNode(name=g.NameNode(value=name))

    # --- arguments and variables

    def arguments(
        self, parent: g.GraphQLNamedType, node: g.FieldNode, definition: g.GraphQLField
    ) -> list[g.ArgumentNode]:
        given = {a.name.value: a.value for a in node.arguments or ()}
        out = []
        for name, argument in definition.args.items():
            interesting = self.interesting(parent.name, node.name.value, name)
            value = given.get(name)
            if interesting is not None:
                value = _literal(self.draw(interesting), argument.type)
            optional = (
                not g.is_non_null_type(argument.type) or argument.default_value is not Undefined
            )
            if value is None or (optional and self.chance(20)):
                continue  # left out: the default applies
            value = self.maybe_variable(value, argument.type, interesting)
            out.append(g.ArgumentNode(name=g.NameNode(value=name), value=value))
        return out

    def interesting(
        self, parent: str, field_name: str, argument: str
    ) -> st.SearchStrategy[Json] | None:
        if field_name == "__type" and argument == "name":
            return st.sampled_from([*sorted(self.schema.type_map), "NoSuchType"])
        return self.values(parent, field_name, argument)

    def maybe_variable(
        self,
        value: g.ValueNode,
        type_: g.GraphQLInputType,
        interesting: st.SearchStrategy[Json] | None,
    ) -> g.ValueNode:
        if self.chance(35):
            return self.variable(value, type_, interesting)
        named = g.get_nullable_type(type_)
        if isinstance(value, g.ObjectValueNode) and isinstance(named, g.GraphQLInputObjectType):
            return g.ObjectValueNode(
                fields=tuple(
                    g.ObjectFieldNode(
                        name=f.name,
                        value=self.maybe_variable(f.value, named.fields[f.name.value].type, None)
                        if f.name.value in named.fields
                        else f.value,
                    )
                    for f in value.fields
                )
            )
        if isinstance(value, g.ListValueNode) and isinstance(named, g.GraphQLList):
            item = cast(g.GraphQLInputType, named.of_type)
            return g.ListValueNode(
                values=tuple(self.maybe_variable(v, item, None) for v in value.values)
            )
        return value

    def variable(
        self,
        value: g.ValueNode,
        type_: g.GraphQLInputType,
        interesting: st.SearchStrategy[Json] | None,
    ) -> g.VariableNode:
        """A variable of `type_` standing for `value`; the second assignment may differ."""
        name = self.fresh("v")
        json_value = g.value_from_ast_untyped(value)
        if not g.is_non_null_type(type_) and self.chance(20):
            self.declare(name, str(type_), default=value)  # left out: its default applies
        else:
            self.declare(name, str(type_))
            self.first[name] = json_value
        again = interesting is not None and self.chance(50)
        self.second[name] = (
            self.draw(interesting) if interesting is not None and again else json_value
        )
        return g.VariableNode(name=g.NameNode(value=name))

    def declare(self, name: str, type_: str, default: g.ValueNode | None = None) -> None:
        self.definitions.append(
            g.VariableDefinitionNode(
                variable=g.VariableNode(name=g.NameNode(value=name)),
                type=g.parse_type(type_),
                default_value=cast(g.ConstValueNode | None, default),
                directives=(),
            )
        )
