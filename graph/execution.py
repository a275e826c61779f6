"""An executor that plans each selection set once and completes whole objects from the plan.

graphql-core completes every field of every object the same general way: a `Path`, a resolve
info, argument coercion, the resolver, awaitable checks, then `complete_value` recursing through
NonNull, List and Object wrappers — about 2 µs per field through Strawberry. A page of 100
clusters with their nodes has 25,000 fields, and almost every decision taken for them depends
only on the schema and the operation: which fields a selection set has (after fragments and
`@include`/`@skip`), which of them are plain attributes, which serializer each leaf needs, which
sub-selection a list's items get. So those decisions are made once, when a selection set is
first met (graphql-jit does the same for JavaScript), and the per-value work is what is left:

- each selection set on an object type becomes a generated Python function (`_Site`) that fills
  the result dict field by field, in the response's key order. A plain attribute of a scalar or
  enum type (a Strawberry field without resolver, arguments or extensions) is read and coerced
  inline by a type check that accepts exactly the values graphql-core would pass through
  unchanged; `__typename` is a constant;
- plain attributes holding objects or lists are completed by completers made once per type
  (`_completer`), which mirror `complete_value` for NonNull, List, Object and leaf types; a
  list of strings, integers or booleans (a cluster's regions) that passes one check of its
  items is copied inline instead (`_list_check`);
- a field with a Strawberry resolver (with no exception handler, and no field extension but one
  `PermissionExtension` on an async resolver) is called as Strawberry's wrapper would call it
  (`_ResolverPlan`): its arguments coerced once per selection, converted per call, its
  permission checked when its result is awaited;
- a resolver that gives a future already running (a DataLoader's `load`: `Cluster.nodes`), whose
  value's completion never awaits, is completed once the future is done (`_Settling`); a list
  of objects each waiting for one such field (a page's clusters) waits for their futures and
  completes them in one coroutine, not a task each (`_settle_objects`);
- everything else (other extensions, introspection, abstract types, types with `is_type_of`,
  awaitable or odd values) is handed to graphql-core's own `execute_field` or `complete_value`
  unchanged.

Whenever a fast check fails — a null in a non-null field, a value that does not coerce, an
exception, an awaitable — the field goes to graphql-core's general path, which reads it again and
reports exactly its own errors, paths and locations; null propagation uses graphql-core's own
`handle_field_error`. The answer is therefore the stock executor's, value for value and error for
error (`tests/graph/test_execution.py` and the differential tests compare them). Plans are built
from the collected fields, which requests of one operation that agree on its directives'
variables share (`graph.collections_kept`), and their generated code is cached by shape (type
and response keys), like the parser cache. With resolve middleware (Strawberry extensions with
`resolve` hooks) nothing is planned. A query of one page of plain clusters does not reach this
executor: `graph.page_plan` answers it with the same generated code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import keyword
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLString,
    Undefined,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, gather_with_cancel
from graphql.type import GraphQLBoolean, GraphQLID, GraphQLInt, GraphQLResolveInfoHelpers
from strawberry.exceptions import PermissionReturnedNonBooleanError
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension
from strawberry.relay.types import GlobalID
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.arguments import _is_leaf_type, _is_optional_leaf_type, convert_argument
from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.types.enum import has_enum_definition
from strawberry.types.unset import UNSET
from strawberry.utils.await_maybe import await_maybe

from graph.collections_kept import Collections, collections_for
from graph.variables import PLANNING
from graph.wire import Wire
from models.records import RowCodec, Rows

log = logging.getLogger("clusterql.graph")

_MISSING: Any = object()  # an attribute that could not be read
_AS_IS: Any = object()  # an argument whose conversion is its value
_COPIED: Any = object()  # an argument whose conversion is a copy of its list
PLAN_CACHE_SIZE = 1024  # selection-set shapes whose code is kept
COMBINED_VALUES_KEPT = 16_384  # per scalar and conversion: distinct stored values' wire values
_new_path = tuple.__new__  # Path is a NamedTuple, whose own __new__ is a Python lambda
_FUTURE = asyncio.Future  # a DataLoader's `load` gives one (not a Task, not a subclass)
_GRAPHQL_INT = (-(2**31), 2**31 - 1)
# The item checks of `_builtin_leaf` that a value's class alone decides, and those classes: a
# list of such items is checked by one set operation (`_column_code`).
_LIST_ITEM_CLASSES = {
    "e.__class__ is str": frozenset({str}),
    "(e is True or e is False)": frozenset({bool}),
}
Completer = Callable[["PlannedExecutor", "_Call", Path, Any], Any]


class _Ref:
    """A field of an object type: what messages and a lazily built resolve info need."""

    __slots__ = ("field_def", "field_name", "parent_type")

    def __init__(
        self, parent_type: GraphQLObjectType, field_name: str, field_def: GraphQLField
    ) -> None:
        self.parent_type = parent_type
        self.field_name = field_name
        self.field_def = field_def

    def null_error(self) -> TypeError:
        return TypeError(
            f"Cannot return null for non-nullable field {self.parent_type}.{self.field_name}."
        )


class _Call:
    """One completion of one field's value: its field, field nodes, path and (lazy) info."""

    __slots__ = ("fdl", "fpath", "info", "ref", "site")

    def __init__(
        self, ref: _Ref, fdl: Any, fpath: Path, info: GraphQLResolveInfo[Any] | None
    ) -> None:
        self.ref = ref
        self.fdl = fdl
        self.fpath = fpath
        self.info = info
        self.site: _Site | None = None  # the items' selection set, for lists of objects

    def resolve_info(self, ex: PlannedExecutor) -> GraphQLResolveInfo[Any]:
        if self.info is None:
            ref = self.ref
            nodes = [details.node for details in self.fdl]
            self.info = ex.build_resolve_info(ref.field_def, nodes, ref.parent_type, self.fpath)
        return self.info


# --- leaves ----------------------------------------------------------------------------------
# A leaf check stores the coerced value, or leaves it alone when graphql-core's general path
# must decide (it may coerce differently, or raise the error the caller is owed).


def _leaf_lines(
    leaf: GraphQLScalarType | GraphQLEnumType, suffix: str, stored: str
) -> tuple[list[str], dict[str, Any]]:
    """Python statements storing the coerced `v` into `stored` (an `if`/`elif` chain, to which
    the caller adds the branches for null and for graphql-core's general path), and the names
    they need (suffixed, so that several can share a namespace). Each accepts only values the
    stock coercion returns unchanged (or as written here), so that the fast path and
    graphql-core agree on every value."""
    builtin = _builtin_leaf(leaf, "v")
    if builtin is not None:
        check, value = builtin
        return [f"if {check}:", f"    {stored} = {value}"], {}
    if isinstance(leaf, CustomGraphQLEnumType):
        by_member = _enum_members(leaf)
        # A plain string is looked up as graphql-core looks it up (a StrEnum's member equals
        # its value), so records may carry the database's text.
        members, wrapped, lookup = f"E{suffix}", f"W{suffix}", f"L{suffix}"
        lines = [
            f"x = {members}.get(v, _MISSING) if v.__class__ is {wrapped} else "
            f"({lookup}.get(v, _MISSING) if v.__class__ is str else _MISSING)"
        ]
        names = {
            members: by_member,
            wrapped: leaf.wrapped_cls,
            lookup: leaf._value_lookup,  # what GraphQLEnumType.coerce_output_value reads
        }
    else:
        # Any other scalar (DateTime among them): its own coercion, trusted only when it
        # returns a value for a value that is not an exception (inline: thousands a page).
        lines = [
            "if v is _MISSING or v is None or isinstance(v, BaseException):",
            "    x = _MISSING",
            "else:",
            "    try:",
            f"        x = C{suffix}(v)",
            "    except Exception:",
            "        x = _MISSING",
            "    if x is None or x is Undefined:",
            "        x = _MISSING",
        ]
        names = {f"C{suffix}": leaf.coerce_output_value}
    return [*lines, "if x is not _MISSING:", f"    {stored} = x"], names


def _builtin_leaf(leaf: Any, x: str) -> tuple[str, str] | None:
    """For a built-in scalar: the check a value `x` must pass to be coerced here, and the
    expression of its wire value (graphql-core's coercion of what passes); None for others."""
    if leaf is GraphQLString:
        return f"{x}.__class__ is str", x
    if leaf is GraphQLID:
        return f"({x}.__class__ is str or {x}.__class__ is int)", f"str({x})"
    if leaf is GraphQLInt:
        low, high = _GRAPHQL_INT
        return f"({x}.__class__ is int and {low} <= {x} <= {high})", x
    if leaf is GraphQLBoolean:
        return f"({x} is True or {x} is False)", x
    return None


def _enum_members(leaf: CustomGraphQLEnumType) -> dict[Any, str]:
    """Each member of an enum's Python class, and its wire value (those that have one)."""
    by_member: dict[Any, str] = {}
    member: Any
    for member in leaf.wrapped_cls:
        try:
            by_member[member] = leaf.coerce_output_value(member)
        except Exception:  # noqa: S112 (left to the general path)
            continue
    return by_member


def _leaf_completer(leaf: GraphQLScalarType | GraphQLEnumType) -> Completer:
    lines, names = _leaf_lines(leaf, "", "out")
    source = "\n".join(["def fast(v):", "    out = _MISSING", *("    " + x for x in lines)])
    namespace = {"_MISSING": _MISSING, "Undefined": Undefined, **names}
    exec(compile(source + "\n    return out", "<leaf>", "exec"), namespace)  # noqa: S102
    fast = namespace["fast"]

    def complete_leaf(ex: PlannedExecutor, call: _Call, path: Path, v: Any) -> Any:
        out = fast(v)
        if out is not _MISSING:
            return out
        if isinstance(v, Exception):
            raise v
        if v is None or v is Undefined:
            return None
        return ex.complete_leaf_value(leaf, v)

    return complete_leaf


# --- composite values ------------------------------------------------------------------------


def _non_null_completer(inner: Completer) -> Completer:
    def complete_non_null(ex: PlannedExecutor, call: _Call, path: Path, v: Any) -> Any:
        out = inner(ex, call, path, v)
        if out is None:
            raise call.ref.null_error()
        return out

    return complete_non_null


def _object_completer(object_type: GraphQLObjectType) -> Completer:
    def complete_object(ex: PlannedExecutor, call: _Call, path: Path, v: Any) -> Any:
        if isinstance(v, Exception):
            raise v
        if v is None or v is Undefined:
            return None
        site = call.site or ex.object_site(object_type, call.fdl)
        return site.run(ex, v, path)

    return complete_object


def _list_completer(list_type: GraphQLList[Any], item: Completer) -> Completer:
    item_type = list_type.of_type
    bare = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
    items_are_objects = isinstance(bare, GraphQLObjectType)
    items_non_null = isinstance(item_type, GraphQLNonNull)

    def complete_list(ex: PlannedExecutor, call: _Call, path: Path, v: Any) -> Any:
        if isinstance(v, Exception):
            raise v
        if v is None or v is Undefined:
            return None
        if v.__class__ is Rows and items_are_objects:
            done = _from_rows(ex, bare, call, v)
            if done is not None:
                return done
            # Completed the usual way, which reports what is wrong: each item is made when
            # reached, as graphql-core reads an iterable (the first error met is the one told).
        elif v.__class__ is not list and v.__class__ is not tuple:
            # async iterables, generators, non-iterables: graphql-core's own way
            return StrawberryGraphQLCoreExecutionContext.complete_value(
                ex, list_type, call.fdl, call.resolve_info(ex), path, v, None
            )
        out: list[Any] = []
        pending: list[int] = []
        fill = _complete_objects if items_are_objects else _complete_items
        try:
            fill(ex, call, path, v, out, pending)
        except Exception:
            # as graphql-core does: what is pending, and the awaitables not reached, are
            # settled in the background so that their errors are observed
            awaitables = [_item_awaitable(ex, call, item_type, path, out, i) for i in pending]
            if v.__class__ is not Rows:  # (made items are never awaitable)
                awaitables += [value for value in v[len(out) + 1 :] if ex.is_awaitable(value)]
            if awaitables:
                ex.settle_in_background(awaitables)
            raise
        if not pending:
            return out
        if all(out[i].__class__ is _SettlingObject for i in pending):
            return _settle_objects(ex, call, item_type, path, out, pending)
        for i in pending:
            out[i] = _item_awaitable(ex, call, item_type, path, out, i)
        return _gather_list(out, pending)

    def _complete_items(
        ex: PlannedExecutor, call: _Call, path: Path, v: Any, out: list[Any], pending: list[int]
    ) -> None:
        is_awaitable = ex.is_awaitable
        for index, value in enumerate(v):
            item_path = _new_path(Path, (path, index, None))
            if is_awaitable(value):
                out.append(
                    ex.complete_awaitable_list_item_value(
                        value, item_type, call.fdl, call.resolve_info(ex), item_path, None
                    )
                )
                pending.append(index)
            else:
                try:
                    done = item(ex, call, item_path, value)
                    if is_awaitable(done):
                        out.append(_await_item(ex, done, item_type, call.fdl, item_path))
                        pending.append(index)
                    else:
                        out.append(done)
                except Exception as raw_error:
                    ex.handle_field_error(raw_error, item_type, call.fdl, item_path)
                    out.append(None)

    def _complete_objects(
        ex: PlannedExecutor, call: _Call, path: Path, v: Any, out: list[Any], pending: list[int]
    ) -> None:
        """`_complete_items` with the object completion inlined: one site for every item."""
        if call.site is None:
            call.site = ex.object_site(bare, call.fdl)
        run = call.site.run
        is_awaitable = ex.is_awaitable
        for index, value in enumerate(v):
            item_path = _new_path(Path, (path, index, None))
            if is_awaitable(value):
                out.append(
                    ex.complete_awaitable_list_item_value(
                        value, item_type, call.fdl, call.resolve_info(ex), item_path, None
                    )
                )
                pending.append(index)
            else:
                try:
                    if isinstance(value, Exception):
                        raise value
                    if value is None or value is Undefined:
                        if items_non_null:
                            raise call.ref.null_error()
                        done = None
                    else:
                        done = run(ex, value, item_path)  # a dict, or an awaitable giving one
                    if done is None or done.__class__ is dict:
                        out.append(done)
                    elif done.__class__ is _SettlingObject:
                        out.append(done)  # its errors handled as the item's where it is awaited
                        pending.append(index)
                    else:
                        out.append(_await_item(ex, done, item_type, call.fdl, item_path))
                        pending.append(index)
                except Exception as raw_error:
                    ex.handle_field_error(raw_error, item_type, call.fdl, item_path)
                    out.append(None)

    return complete_list


async def _await_item(
    ex: PlannedExecutor, done: Awaitable[Any], item_type: Any, fdl: Any, item_path: Path
) -> Any:
    try:
        return await done
    except Exception as raw_error:
        ex.handle_field_error(raw_error, item_type, fdl, item_path)
        return None


async def _gather_list(out: list[Any], pending: list[int]) -> list[Any]:
    if len(pending) == 1:
        out[pending[0]] = await out[pending[0]]
    else:
        done = await gather_with_cancel(*(out[i] for i in pending))
        for i, value in zip(pending, done, strict=True):
            out[i] = value
    return out


_COMPLETERS: dict[GraphQLOutputType, Completer | None] = {}


def _completer(type_: GraphQLOutputType) -> Completer | None:
    """How to complete values of `type_`, made once per type; None: graphql-core's way."""
    if type_ in _COMPLETERS:
        return _COMPLETERS[type_]
    made: Completer | None = None
    if isinstance(type_, GraphQLNonNull):
        inner = _completer(type_.of_type)
        made = None if inner is None else _non_null_completer(inner)
    elif isinstance(type_, GraphQLList):
        item = _completer(type_.of_type)
        made = None if item is None else _list_completer(type_, item)
    elif isinstance(type_, GraphQLScalarType | GraphQLEnumType):
        made = _leaf_completer(type_)
    elif isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
        made = _object_completer(type_)
    _COMPLETERS[type_] = made
    return made


# --- objects straight from driver rows --------------------------------------------------------


def _from_rows(
    ex: PlannedExecutor, object_type: GraphQLObjectType, call: _Call, rows: Rows[Any]
) -> list[dict[str, Any]] | None:
    """The result dicts of `rows` (driver rows that `rows.codec` says how to read), made by code
    generated for this selection set and codec; None when a field is not a plain column or a
    value is not one the fast path takes as it is (then the records take the usual way)."""
    fields = ex.shape(object_type, call.fdl)
    made = rows_factory(object_type, fields, rows.codec, getattr(ex.context_value, "wire", None))
    return None if made is None else made(rows.rows)


class _NotTaken(Exception):
    """A stored value the fast path does not take as it is (the records' way decides)."""


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _wire(
    coerce: Callable[[Any], Any], convert: Callable[[Any], Any] | None
) -> Callable[[Any], Any]:
    """A stored value's wire value (its conversion, then its scalar's coercion), kept per
    distinct value: the same as coercing the record's attribute, computed once. A value the
    scalar gives nothing for raises `_NotTaken`."""

    def wire(v: Any) -> Any:
        x = coerce(v if convert is None else convert(v))
        if x is None or x is Undefined:
            raise _NotTaken
        return x

    return functools.lru_cache(maxsize=COMBINED_VALUES_KEPT)(wire)


def _converted_first(
    i: int, x: str, convert: Callable[[Any], Any] | None, first: list[str], names: dict[str, Any]
) -> str:
    """The expression of column `x` once `convert` (if any) has made it what the record holds:
    a first statement `v{i} = ...` and the name `V{i}` it calls."""
    if convert is None:
        return x
    first.append(f"v{i} = None if {x} is None else V{i}({x})")
    names[f"V{i}"] = convert
    return f"v{i}"


# The guarantees of a column (`models.records.EXACT`) under which a built-in scalar's check
# always passes: an ID takes any str or int, an Int any int within 32 bits.
_PROVEN_BY: dict[Any, set[str]] = {
    GraphQLString: {"str"},
    GraphQLID: {"str", "int", "int32"},
    GraphQLInt: {"int32"},
    GraphQLBoolean: {"bool"},
}


def _column_code(
    i: int,
    field: GraphQLField,
    index: int,
    convert: Callable[[Any], Any] | None,
    exact: str | None,
    wire: Wire | None = None,
    null: str = "None",
) -> tuple[list[str], str | None, str, dict[str, Any]] | None:
    """Field `i` read from column `index` of a row unpacked into `c0, c1, ...`: the statements
    it needs first, the check its value must pass (None: none), the expression of its wire
    value, and the names they use. The checks accept exactly what `_leaf_lines` accepts; a
    check that what the driver guarantees of the column (`exact`) always passes is left out.
    With a `wire`, IDs and enums come out in its values, and a null as `null` (an expression)."""
    type_ = field.type
    non_null = isinstance(type_, GraphQLNonNull)
    leaf = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    x, first, names = f"c{index}", list[str](), dict[str, Any]()
    if isinstance(leaf, GraphQLList):
        # a list of strings, integers or booleans (a cluster's regions, converted from its
        # stored JSON text if need be): taken whole, copied
        x = _converted_first(i, x, convert, first, names)
        listed = _list_check(i, leaf, x)
        if listed is None:
            return None
        check = listed[0]
        names.update(listed[1])
        # a list a conversion made is the result's own; one from the driver is copied
        value = x if convert is not None else f"[*{x}]"
        if not non_null:
            check, value = f"({x} is None or {check})", f"(None if {x} is None else {value})"
        return first, check, value, names
    if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
        return None
    if _builtin_leaf(leaf, x) is None and not isinstance(leaf, CustomGraphQLEnumType):
        # a scalar of its own (DateTime): coerced once per distinct stored value
        names[f"C{i}"] = _wire(leaf.coerce_output_value, convert)
        if exact is not None:  # never null
            return first, None, f"C{i}({x})", names
        if non_null:
            return first, f"{x} is not None", f"C{i}({x})", names
        return first, None, f"({null} if {x} is None else C{i}({x}))", names
    x = _converted_first(i, x, convert, first, names)
    builtin = _builtin_leaf(leaf, x)
    if builtin is not None:
        check, value = builtin
        if leaf is GraphQLID and wire is not None and wire.int_ids:
            check, value = f"{x}.__class__ is int", x  # a str id: GraphQL's way
            if exact in ("int", "int32"):
                return first, None, value, names
        elif exact in _PROVEN_BY.get(leaf, ()):
            return first, None, value, names
    else:
        assert isinstance(leaf, CustomGraphQLEnumType)
        members, wrapped, lookup = f"E{i}", f"W{i}", f"L{i}"
        names[lookup] = _in_wire(leaf, leaf._value_lookup, wire)
        if exact == "str":  # a stored name no member has: KeyError, and the records' way
            return first, None, f"{lookup}[{x}]", names
        check = f"({x}.__class__ is str or {x}.__class__ is {wrapped})"
        value = f"({members}[{x}] if {x}.__class__ is {wrapped} else {lookup}[{x}])"  # KeyError
        names[members] = _in_wire(leaf, _enum_members(leaf), wire)
        names[wrapped] = leaf.wrapped_cls
    if not non_null:
        check, value = f"({x} is None or {check})", f"({null} if {x} is None else {value})"
    return first, check, value, names


def _list_check(i: int, list_type: GraphQLList[Any], x: str) -> tuple[str, dict[str, Any]] | None:
    """For a list of a built-in scalar whose wire values are the values themselves (String,
    Int, Boolean): the check that `x` is a list graphql-core would complete to a copy of itself
    (each item passing `_builtin_leaf`'s check), and the names it uses; None for other lists."""
    item = list_type.of_type
    bare = item.of_type if isinstance(item, GraphQLNonNull) else item
    made = _builtin_leaf(bare, "e")
    if made is None or made[1] != "e":  # items taken as they are
        return None
    names: dict[str, Any] = {}
    classes = _LIST_ITEM_CLASSES.get(made[0])
    if classes is not None:
        # items of one class (a String's str): their classes checked by a set, in C
        if not isinstance(item, GraphQLNonNull):
            classes = classes | {type(None)}
        names[f"I{i}"] = classes
        items_pass = f"I{i}.issuperset(map(type, {x}))"
    else:
        item_check = made[0]
        if not isinstance(item, GraphQLNonNull):
            item_check = f"(e is None or {item_check})"
        items_pass = f"all({item_check} for e in {x})"
    return f"({x}.__class__ is list and {items_pass})", names


def _in_wire(
    leaf: CustomGraphQLEnumType, names: dict[Any, str], wire: Wire | None
) -> dict[Any, Any]:
    """`names` (what maps to each member's name) mapped to the wire's values instead, if it
    has some for this enum; a member it lacks is left out (the general path answers it)."""
    values = None if wire is None else wire.enums.get(leaf.name)
    if values is None:
        return names
    return {key: values[name] for key, name in names.items() if name in values}


def plain_selection(object_type: GraphQLObjectType, fields: tuple[tuple[str, str], ...]) -> bool:
    """Whether every field of a selection set on `object_type` (response keys and field names)
    is `__typename` or a plain attribute of a scalar or enum type."""
    for _key, field_name in fields:
        if field_name == "__typename":
            continue
        field = object_type.fields.get(field_name)
        if (
            field is None
            or _basic_attribute(field) is None
            or not isinstance(_bare(field.type), GraphQLScalarType | GraphQLEnumType)
        ):
            return False
    return True


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def rows_factory(
    parent_type: GraphQLObjectType,
    fields: tuple[tuple[str, str], ...],
    codec: RowCodec[Any],
    wire: Wire | None = None,
) -> Callable[[Sequence[Any]], list[dict[str, Any]] | None] | None:
    """Generate the code that makes a selection set's dicts from rows of `codec`'s layout (one
    dict display per row, after one check of every value), or None when a field is not a plain
    attribute of a scalar or enum type read from a column. With a `wire`, its leaf values
    (`graph.wire`)."""
    first: list[str] = []
    checks: list[str] = []
    items: list[str] = []
    names: dict[str, Any] = {}
    for i, (response_key, field_name) in enumerate(fields):
        if field_name == "__typename":
            items.append(f"{response_key!r}: {parent_type.name!r}")
            continue
        field = parent_type.fields.get(field_name)
        attribute = None if field is None else _basic_attribute(field)
        column = None if attribute is None else codec.columns.get(attribute)
        null = "None"
        if wire is not None and (parent_type.name, field_name) in wire.nulls:
            null = f"N{i}"
            names[null] = wire.nulls[parent_type.name, field_name]
        made = (
            None if field is None or column is None else _column_code(i, field, *column, wire, null)
        )
        if made is None:
            return None
        first += made[0]
        checks += [] if made[1] is None else [made[1]]
        items.append(f"{response_key!r}: {made[2]}")
        names.update(made[3])
    columns = ", ".join(f"c{k}" for k in range(len(codec.converts)))
    lines = [f"{columns}, = r", *first]
    if checks:
        lines += [f"if not ({' and '.join(checks)}):", "    return None"]
    lines.append(f"append({{{', '.join(items)}}})")
    indented = "\n".join("            " + line for line in lines)
    source = f"""
def from_rows(rows):
    out = []
    append = out.append
    try:
        for r in rows:
{indented}
    except Exception:
        return None
    return out
"""
    namespace: dict[str, Any] = {**names}
    exec(compile(source, f"<rows {parent_type.name}>", "exec"), namespace)  # noqa: S102
    return namespace["from_rows"]  # type: ignore[no-any-return]


# --- selection sets --------------------------------------------------------------------------


def _basic_attribute(field: GraphQLField) -> str | None:
    """The attribute a field reads when it is a plain Strawberry attribute, else None."""
    strawberry_field = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        field.args
        or not getattr(field.resolve, "_is_default", False)
        or strawberry_field is None
        or not getattr(strawberry_field, "is_basic_field", False)
        or getattr(strawberry_field, "default_resolver", None) is not getattr
    ):
        return None
    name = strawberry_field.python_name
    return name if isinstance(name, str) else None


def _bare(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _attribute_read(attribute: str) -> str:
    if attribute.isidentifier() and not keyword.iskeyword(attribute):
        return f"src.{attribute}"
    return f"getattr(src, {attribute!r})"


def _step_source(
    i: int, parent_type: GraphQLObjectType, response_key: str, field_name: str
) -> tuple[str, dict[str, Any]]:
    """The generated lines of step `i` (inside `run`'s try block), and the names they need."""
    key = f"K[{i}]"
    general = f"aw = _general(ex, P, src, path, r, aw, {key}, F[{i}])"
    if field_name == "__typename":
        return f"r[{key}] = {parent_type.name!r}", {}
    field = parent_type.fields.get(field_name)
    attribute = None if field is None else _basic_attribute(field)
    if field is not None and attribute is None:
        resolver = _ResolverPlan.of(parent_type, field_name, field)
        if resolver is not None:
            return f"aw = _resolve(ex, S{i}, src, path, r, aw, {key}, F[{i}])", {f"S{i}": resolver}
    if field is None or attribute is None:
        return general, {}
    read = _attribute_read(attribute)
    type_ = field.type
    leaf = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
        stored = f"r[{response_key!r}]"  # the key is part of the shape: a literal
        lines = ["try:", f"    v = {read}", "except Exception:", "    v = _MISSING"]
        checks, names = _leaf_lines(leaf, str(i), stored)
        lines += checks
        if not isinstance(type_, GraphQLNonNull):
            lines += ["elif v is None:", f"    {stored} = None"]
        lines += ["else:", f"    {general}"]
        return "\n".join(lines), names
    completer = _completer(type_)
    bare = _bare(type_)
    if completer is None or not isinstance(
        bare, GraphQLObjectType | GraphQLScalarType | GraphQLEnumType
    ):
        return general, {}
    names = {f"R{i}": _Ref(parent_type, field_name, field), f"T{i}": type_, f"M{i}": completer}
    lines = ["try:", f"    v = {read}", "except Exception:", "    v = _MISSING"]
    listed = _list_check(i, leaf, "v") if isinstance(leaf, GraphQLList) else None
    if listed is not None:
        # a list of strings, integers or booleans (a cluster's regions): copied at once, as
        # graphql-core would complete it item by item
        stored = f"r[{response_key!r}]"
        lines += [f"if {listed[0]}:", f"    {stored} = [*v]"]
        if not isinstance(type_, GraphQLNonNull):
            lines += ["elif v is None:", f"    {stored} = None"]
        names.update(listed[1])
    lines += [
        f"{'el' if listed is not None else ''}if v is _MISSING or is_awaitable(v):",
        f"    {general}",
        "else:",
        f"    x = _complete_attribute(ex, R{i}, T{i}, M{i}, F[{i}], Path(path, {key}, N), v)",
        f"    r[{key}] = x",
        "    if is_awaitable(x):",
        "        aw = aw or []",
        f"        aw.append({key})",
    ]
    return "\n".join(lines), names


class _Site:
    """One selection set on one object type, as this request collected it: its generated
    `run(ex, src, path)` fills the result dict of one object."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[PlannedExecutor, Any, Path | None], Any]) -> None:
        self.run = run


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _site_factory(
    parent_type: GraphQLObjectType, fields: tuple[tuple[str, str], ...]
) -> Callable[[tuple[str, ...], tuple[Any, ...]], _Site]:
    """Generate the code of a selection set of this shape (response keys and field names).

    Cached like the parser cache; bounded, as callers choose the shapes (aliases)."""
    body: list[str] = []
    names: dict[str, Any] = {}
    unplanned = []
    for i, (response_key, field_name) in enumerate(fields):
        source, needed = _step_source(i, parent_type, response_key, field_name)
        body.append(source)
        names.update(needed)
        if source.startswith("aw = _general("):
            unplanned.append(field_name)
    # The planner says what it leaves to graphql-core (CLUSTERQL_LOG_LEVEL=debug shows it).
    log.debug(
        "planned a selection set on %s: %d fields, graphql-core's own way for %s",
        parent_type.name,
        len(fields),
        ", ".join(unplanned) or "none",
    )
    indented = "\n".join("            " + line for text in body for line in text.splitlines())
    source = f"""
def make(K, F):
    def run(ex, src, path):
        r = {{}}
        aw = None
        is_awaitable = ex.is_awaitable
        try:
{indented or "            pass"}
        except Exception:
            if aw:
                ex.settle_in_background([r[k] for k in aw])
            raise
        if aw is None:
            return r
        return _pending_object(r, aw)
    return _Site(run)
"""
    namespace: dict[str, Any] = {
        "P": parent_type,
        "N": parent_type.name,
        "Path": Path,
        "_MISSING": _MISSING,
        "Undefined": Undefined,
        "_general": _general,
        "_resolve": _resolve,
        "_complete_attribute": _complete_attribute,
        "_pending_object": _pending_object,
        "_Site": _Site,
        **names,
    }
    exec(compile(source, f"<plan {parent_type.name}>", "exec"), namespace)  # noqa: S102
    return namespace["make"]  # type: ignore[no-any-return]


class _ResolverPlan:
    """A field with a Strawberry resolver, called as Strawberry's resolver wrapper calls it,
    without the wrapper's layers: no exception handlers, and no field extension but (on an
    async resolver) one `PermissionExtension`, whose checks are made as its `resolve_async`
    makes them. graphql-core's coercion of the arguments (from the field node and the
    variables) is done once per selection, not per object (a page's 100 `Cluster.nodes`);
    their conversion to Python values is made per call, as Strawberry makes it, except that
    the conversion of a scalar or enum (the value as it is; a list of them, copied) is
    planned once per field. An async resolver's conversion, checks and call run when its
    result is awaited, as Strawberry's do.
    """

    __slots__ = (
        "field",
        "field_def",
        "field_name",
        "parent_type",
        "permission",
        "plain",
        "resolver",
        "steps",
    )

    def __init__(
        self,
        parent_type: GraphQLObjectType,
        field_name: str,
        field_def: GraphQLField,
        permission: PermissionExtension | None,
    ) -> None:
        self.parent_type = parent_type
        self.field_name = field_name
        self.field_def = field_def
        self.field: Any = field_def.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
        self.resolver: Any = self.field.base_resolver
        self.permission = permission
        # per argument: GraphQL name, Python name, how it converts (`_AS_IS`, `_COPIED`, or its
        # Strawberry type for `convert_argument`); made at the first call, which has the
        # executor's scalar registry
        self.steps: tuple[tuple[str, str, Any], ...] | None = None
        self.plain = False  # every argument as it is or copied, and no permission to check

    @staticmethod
    def of(
        parent_type: GraphQLObjectType, field_name: str, field_def: GraphQLField
    ) -> _ResolverPlan | None:
        field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        resolve = field_def.resolve
        if (
            field is None
            or getattr(field, "base_resolver", None) is None
            or getattr(field, "is_subscription", True)
            or resolve is None
            or _closure(resolve, "field_exception_handlers") != ()
        ):
            return None
        extensions = list(getattr(field, "extensions", None) or ())
        permission = None
        if extensions:
            # only Strawberry's own permission check, on an async resolver (whose checks
            # Strawberry makes in `resolve_async`), reshaping no argument
            only = extensions[0]
            if (
                len(extensions) != 1
                or type(only) is not PermissionExtension
                or not field.is_async
                or type(only).map_arguments is not FieldExtension.map_arguments
            ):
                return None
            permission = only
        return _ResolverPlan(parent_type, field_name, field_def, permission)

    def raw_arguments(self, ex: PlannedExecutor, fdl: Any) -> dict[str, Any] | None:
        """graphql-core's argument values for this selection (from its field node and the
        variables), or None when coercing them fails (then every object takes graphql-core's
        path, with its error)."""
        cache = ex.arguments
        found = cache.get(id(fdl), _MISSING)
        if found is _MISSING:
            details = fdl[0]
            try:
                found = get_argument_values(
                    self.field_def,
                    details.node,
                    ex.variable_values,
                    details.fragment_variable_values,
                    ex.hide_suggestions,
                )
            except Exception:
                found = None
            cache[id(fdl)] = found
            ex.keep_alive.append(fdl)
        return found  # type: ignore[no-any-return]

    def plan_steps(self, ex: PlannedExecutor) -> None:
        """How each argument converts, as `convert_arguments` would convert it."""
        converter = ex.strawberry_converter
        registry, config = converter.scalar_registry, converter.config
        steps = []
        for argument in self.field.arguments:
            type_ = argument.type
            if type(type_) is StrawberryOptional:  # not Maybe, which wraps its value
                type_ = type_.of_type
            if _is_leaf_type(type_, registry, skip_classes=(GlobalID,)) or has_enum_definition(
                type_
            ):
                how: Any = _AS_IS
            elif isinstance(type_, StrawberryList) and (
                _is_leaf_type(type_.of_type, registry, skip_classes=(GlobalID,))
                or _is_optional_leaf_type(type_.of_type, registry, skip_classes=(GlobalID,))
            ):
                how = _COPIED
            else:
                how = argument.type
            steps.append((config.name_converter.from_argument(argument), argument.python_name, how))
        self.steps = tuple(steps)
        self.plain = self.permission is None and all(
            how is _AS_IS or how is _COPIED for _, _, how in steps
        )

    def kwargs(
        self, ex: PlannedExecutor, src: Any, info: Any, raw: dict[str, Any]
    ) -> dict[str, Any]:
        """The keyword arguments Strawberry's `get_arguments` would give the resolver."""
        assert self.steps is not None
        kwargs: dict[str, Any] = {}
        for name, python_name, how in self.steps:
            if name in raw:
                v = raw[name]
                if how is _AS_IS:
                    kwargs[python_name] = v
                elif how is _COPIED:  # graphql-core gives every request the same default
                    kwargs[python_name] = v if v is None or v is UNSET else list(v)
                else:
                    converter = ex.strawberry_converter
                    kwargs[python_name] = convert_argument(
                        v, how, converter.scalar_registry, converter.config, info, path=(name,)
                    )
        resolver = self.resolver
        if resolver.parent_parameter:
            kwargs[resolver.parent_parameter.name] = src
        if resolver.root_parameter:
            kwargs[resolver.root_parameter.name] = src
        if resolver.info_parameter:
            kwargs[resolver.info_parameter.name] = info
        return kwargs

    def invoke(self, src: Any, kwargs: dict[str, Any]) -> Any:
        resolver = self.resolver
        return resolver(src, **kwargs) if resolver.self_parameter else resolver(**kwargs)

    async def call_async(
        self, ex: PlannedExecutor, src: Any, info: Any, raw: dict[str, Any]
    ) -> Any:
        """An async resolver's result, its arguments converted and its permission checked
        when awaited: what Strawberry's `_async_resolver` and the extension's
        `resolve_async` do."""
        kwargs = self.kwargs(ex, src, info, raw)
        permission = self.permission
        if permission is None:
            return await await_maybe(self.invoke(src, kwargs))
        # the extension is given the arguments but one named `info` (Strawberry's
        # `extension_resolver`), which the resolver gets back
        requested = kwargs.pop("info", _MISSING)
        for check in permission.permissions:
            allowed = await await_maybe(check.has_permission(src, info, **kwargs))
            if not isinstance(allowed, bool):
                if inspect.iscoroutine(allowed):
                    allowed.close()
                raise PermissionReturnedNonBooleanError(check, allowed)
            if not allowed:
                return permission._on_unauthorized(check)
        if requested is not _MISSING:
            kwargs["info"] = requested
        result = self.invoke(src, kwargs)
        return result if inspect.isasyncgen(result) else await result


def _closure(function: Callable[..., Any], name: str) -> Any:
    code = getattr(function, "__code__", None)
    if code is None or name not in code.co_freevars:
        return _MISSING
    return function.__closure__[code.co_freevars.index(name)].cell_contents  # type: ignore[index]


def _resolve(
    ex: PlannedExecutor,
    plan: _ResolverPlan,
    src: Any,
    path: Path | None,
    r: dict[str, Any],
    aw: list[str] | None,
    key: str,
    fdl: Any,
) -> list[str] | None:
    """`_general` for a `_ResolverPlan` field: what `execute_field` and Strawberry's resolver
    wrapper do, with graphql-core's argument values coerced once per selection."""
    raw = plan.raw_arguments(ex, fdl)
    if raw is None:
        return _general(ex, plan.parent_type, src, path, r, aw, key, fdl)
    if plan.steps is None:
        plan.plan_steps(ex)
    parent_type = plan.parent_type
    fpath = _new_path(Path, (path, key, parent_type.name))
    return_type = plan.field_def.type
    info = ex.build_resolve_info(
        plan.field_def, [details.node for details in fdl], parent_type, fpath
    )
    try:
        resolver = plan.resolver
        strawberry_info = (
            ex.strawberry_converter.config.info_class(_raw_info=info, _field=plan.field)
            if resolver.info_parameter or not plan.plain
            else None
        )
        if plan.plain or not plan.field.is_async:
            # Strawberry converts a sync resolver's arguments when it is called; a plain
            # conversion cannot fail, so an async one's may be made now too
            result = plan.invoke(src, plan.kwargs(ex, src, strawberry_info, raw))
        else:
            result = plan.call_async(ex, src, strawberry_info, raw)
        x: Any
        if result.__class__ is _FUTURE and ex.completes_at_once(return_type, fdl):
            x = _Settling(ex, return_type, fdl, info, fpath, result)
        elif ex.is_awaitable(result):
            x = ex.complete_awaitable_value(return_type, fdl, info, fpath, result, None)
        else:
            x = ex.complete_value(return_type, fdl, info, fpath, result, None)
            if ex.is_awaitable(x):
                x = _await_field(ex, x, return_type, fdl, fpath)
    except Exception as raw_error:
        ex.handle_field_error(raw_error, return_type, fdl, fpath)
        x = None
    r[key] = x
    if ex.is_awaitable(x):
        aw = aw or []
        aw.append(key)
    return aw


def _general(
    ex: PlannedExecutor,
    parent_type: GraphQLObjectType,
    src: Any,
    path: Path | None,
    r: dict[str, Any],
    aw: list[str] | None,
    key: str,
    fdl: Any,
) -> list[str] | None:
    """A field graphql-core's own way (what its `execute_fields` does for each field)."""
    x = ex.execute_field(parent_type, src, fdl, Path(path, key, parent_type.name), None)
    if x is not Undefined:
        r[key] = x
        if ex.is_awaitable(x):
            aw = aw or []
            aw.append(key)
    return aw


def _complete_attribute(
    ex: PlannedExecutor,
    ref: _Ref,
    return_type: GraphQLOutputType,
    completer: Completer,
    fdl: Any,
    fpath: Path,
    v: Any,
) -> Any:
    """A plain attribute's value completed as `execute_field` completes a resolver's result."""
    try:
        done = completer(ex, _Call(ref, fdl, fpath, None), fpath, v)
        if ex.is_awaitable(done):
            return _await_field(ex, done, return_type, fdl, fpath)
    except Exception as raw_error:
        ex.handle_field_error(raw_error, return_type, fdl, fpath)
        return None
    return done


async def _await_field(
    ex: PlannedExecutor, done: Awaitable[Any], return_type: Any, fdl: Any, fpath: Path
) -> Any:
    try:
        return await done
    except Exception as raw_error:
        ex.handle_field_error(raw_error, return_type, fdl, fpath)
        return None


async def _gather_fields(r: dict[str, Any], pending: list[str]) -> dict[str, Any]:
    if len(pending) == 1:
        r[pending[0]] = await r[pending[0]]
    else:
        r.update(zip(pending, await gather_with_cancel(*(r[k] for k in pending)), strict=True))
    return r


class _Settling:
    """A field whose resolver gave a future already running (a DataLoader's `load`: a page's
    `Cluster.nodes`), and whose value's completion is never awaitable
    (`PlannedExecutor.completes_at_once`). Awaited, it is what graphql-core's
    `complete_awaitable_value` of that future is; a list of objects each waiting for one such
    field completes them all in one coroutine instead (`_settle_objects`)."""

    __slots__ = ("ex", "fdl", "fpath", "future", "info", "return_type")

    def __init__(
        self,
        ex: PlannedExecutor,
        return_type: GraphQLOutputType,
        fdl: Any,
        info: GraphQLResolveInfo[Any],
        fpath: Path,
        future: asyncio.Future[Any],
    ) -> None:
        self.ex = ex
        self.return_type = return_type
        self.fdl = fdl
        self.info = info
        self.fpath = fpath
        self.future = future

    def __await__(self) -> Any:
        return self.ex.complete_awaitable_value(
            self.return_type, self.fdl, self.info, self.fpath, self.future, None
        ).__await__()

    def completed(self) -> Any:
        """Once the future is done: what `complete_awaitable_value` gives (the future's error
        handled as the field's, which raises when it propagates past a non-null field)."""
        ex = self.ex
        try:
            done = ex.complete_value(
                self.return_type, self.fdl, self.info, self.fpath, self.future.result(), None
            )
            if ex.is_awaitable(done):  # not expected (`completes_at_once`): awaited then
                return _await_field(ex, done, self.return_type, self.fdl, self.fpath)
        except Exception as raw_error:
            ex.handle_field_error(raw_error, self.return_type, self.fdl, self.fpath)
            return None
        return done


class _SettlingObject:
    """An object's result dict whose one pending field is `_Settling`. Awaited, it is what the
    site's `_gather_fields` would be."""

    __slots__ = ("key", "r")

    def __init__(self, r: dict[str, Any], key: str) -> None:
        self.r = r
        self.key = key

    def __await__(self) -> Any:
        return _gather_fields(self.r, [self.key]).__await__()


def _pending_object(r: dict[str, Any], aw: list[str]) -> Any:
    """The awaitable of an object's result dict whose fields `aw` are still to come."""
    if len(aw) == 1 and r[aw[0]].__class__ is _Settling:
        return _SettlingObject(r, aw[0])
    return _gather_fields(r, aw)


async def _settle_objects(
    ex: PlannedExecutor,
    call: _Call,
    item_type: GraphQLOutputType,
    path: Path,
    out: list[Any],
    pending: list[int],
) -> list[Any]:
    """The items `pending` of a list of objects, each a `_SettlingObject`, completed in this
    one coroutine: what `_gather_list` of their `_await_item`s gives, without the task (and
    its coroutines and loop callbacks) that gathering makes per item: a page with nodes has 100.

    The same answer and errors, in the same order: those tasks would each wait for their
    future, then complete their field and item when woken, in the order the futures were
    settled, which is the items' (one DataLoader batch settles its futures in the order they
    were loaded, in one go); no completion awaits anything (`completes_at_once`), so every item
    is completed in that one turn of the loop. Here the futures are awaited first, then the
    items completed in order; the first error an item propagates (past a non-null item) is
    raised once all are, as `gather_with_cancel` raises the first of them."""
    for i in pending:
        future = out[i].r[out[i].key].future
        if not future.done():
            with contextlib.suppress(Exception):  # the field's error, reported when completed
                await future
    first_error: Exception | None = None
    for i in pending:
        item = out[i]
        try:
            done = item.r[item.key].completed()
            if ex.is_awaitable(done):
                done = await done  # (see `_Settling.completed`)
            item.r[item.key] = done
            out[i] = item.r
        except Exception as raw_error:
            out[i] = None
            item_path = _new_path(Path, (path, i, None))
            try:
                ex.handle_field_error(raw_error, item_type, call.fdl, item_path)
            except Exception as error:
                first_error = first_error or error
    if first_error is not None:
        raise first_error
    return out


def _item_awaitable(
    ex: PlannedExecutor,
    call: _Call,
    item_type: GraphQLOutputType,
    path: Path,
    out: list[Any],
    i: int,
) -> Any:
    """Item `i`'s awaitable as `_gather_list` takes it: a `_SettlingObject` with its errors
    handled as the item's (`_await_item`)."""
    item = out[i]
    if item.__class__ is _SettlingObject:
        return _await_item(ex, item, item_type, call.fdl, _new_path(Path, (path, i, None)))
    return item


def _shape_of(grouped_field_set: Any) -> tuple[tuple[str, str], ...]:
    """A collected selection set's response keys and field names: what its plans depend on."""
    return tuple((key, fdl[0].node.name.value) for key, fdl in grouped_field_set.items())


_SETTLING: set[asyncio.Future[Any]] = set()  # work tracked after its operation's answer


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    """graphql-core's `gather_async_work`, without the executor."""
    return gather_with_cancel(*values)


def _settle(is_awaitable: Callable[[Any], bool], values: Sequence[Any]) -> None:
    """graphql-core's `track_async_work` for an executor that has answered: the awaitables
    among `values` settled in the background, kept alive until they are."""
    awaitables = [value for value in values if is_awaitable(value)]
    if awaitables:
        future = asyncio.gather(*awaitables, return_exceptions=True)
        _SETTLING.add(future)
        future.add_done_callback(_SETTLING.discard)


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with selection sets completed by plans made once (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self._planning = not (manager and manager.middlewares)
        # id(grouped field set) -> (that set, its site) and (that set, its shape): each entry
        # keeps its set alive, so that its id is not reused while the entry exists
        self._sites: dict[int, tuple[Any, _Site]] = {}
        self._shapes: dict[int, tuple[Any, tuple[tuple[str, str], ...]]] = {}
        self._kept: Collections | None = None
        if self._planning:
            self._kept = collections_for(
                self.schema,
                self.operation,
                self.fragment_definitions,
                self.variable_values.coerced,
                self.hide_suggestions,
            )
        if self._kept is not None:  # collected and planned once for requests like this one
            self._relevant_sub_fields = self._kept.sub_fields
            self._sites = self._kept.plans
            self._shapes = self._kept.shapes
        self._refs: dict[tuple[GraphQLObjectType, str], _Ref] = {}
        self.arguments: dict[int, dict[str, Any] | None] = {}  # id(field details) -> values
        self.keep_alive: list[Any] = []  # what the ids of `arguments` name, alive while used
        # id(field details) -> (those details, whether `completes_at_once`)
        self._at_once: dict[int, tuple[Any, bool]] = {}

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        """graphql-core's `build`, with the operation's variables coerced by its plan
        (`graph.variables`)."""
        token = PLANNING.set(True)
        try:
            return super().build(*args, **kwargs)
        finally:
            PLANNING.reset(token)

    @functools.cached_property
    def strawberry_converter(self) -> Any:
        """Strawberry's schema converter: its scalars and config convert arguments."""
        return self.schema._strawberry_schema.schema_converter  # type: ignore[attr-defined]

    def site(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> _Site:
        """The plan of a collected selection set, made once per request."""
        found = self._sites.get(id(grouped_field_set))
        if found is not None:
            return found[1]
        fields = _shape_of(grouped_field_set)
        made = _site_factory(parent_type, fields)(
            tuple(key for key, _ in fields), tuple(grouped_field_set.values())
        )
        self._sites[id(grouped_field_set)] = (grouped_field_set, made)  # keeps the id valid
        return made

    def shape(self, object_type: GraphQLObjectType, fdl: Any) -> tuple[tuple[str, str], ...]:
        """The response keys and field names of a field's selection set on `object_type`."""
        grouped_field_set = self.collect_subfields(object_type, fdl)[0]
        found = self._shapes.get(id(grouped_field_set))
        if found is None:
            found = self._shapes[id(grouped_field_set)] = (
                grouped_field_set,
                _shape_of(grouped_field_set),
            )
        return found[1]

    def completes_at_once(self, return_type: GraphQLOutputType, fdl: Any) -> bool:
        """Whether completing a value of `return_type` for the field `fdl` never awaits: a leaf,
        or objects (in lists or not) whose selected fields are all plain attributes of scalar or
        enum types. Decided once per field (a page's 100 `Cluster.nodes` share theirs)."""
        found = self._at_once.get(id(fdl))
        if found is None:
            found = self._at_once[id(fdl)] = (fdl, self._at_once_for(return_type, fdl))
        return found[1]

    def _at_once_for(self, return_type: GraphQLOutputType, fdl: Any) -> bool:
        if self.abort_signal is not None:  # graphql-core awaits every value in a task then
            return False
        bare = _bare(return_type)
        if isinstance(bare, GraphQLScalarType | GraphQLEnumType):
            return True
        if not isinstance(bare, GraphQLObjectType) or bare.is_type_of is not None:
            return False
        return plain_selection(bare, self.shape(bare, fdl))

    def object_site(self, object_type: GraphQLObjectType, fdl: Any) -> _Site:
        grouped_field_set = self.collect_subfields(object_type, fdl)[0]
        return self.site(object_type, grouped_field_set)

    def build_response(self, data: dict[str, Any] | None) -> Any:
        """graphql-core's response, then the executor's one reference cycle undone, when no
        work of the operation is left to settle.

        graphql-core's executor and its `async_helpers` (bound methods of it) refer to each
        other, and the executor to the context: the request's context, its loaders' futures
        and the driver rows they hold (2,000 tuples for a page with nodes) were then freed by
        the cyclic garbage collector, a collection or more later, instead of when the request
        ends. The helpers stay usable by what already holds them (resolvers receive them in
        `info`), and new ones do what they did without the executor: work tracked later is
        still settled in the background (`_settle`)."""
        response = super().build_response(data)
        if not self.background_futures:
            self.async_helpers = GraphQLResolveInfoHelpers(
                gather=_gather, track=functools.partial(_settle, self.is_awaitable)
            )
        return response

    def execute_root_grouped_field_set(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: Any,
        serially: bool,
        position_context: Any,
    ) -> Any:
        """The root's fields, from the grouped field set kept for requests like this one (the
        same fields, collected by an earlier request), so that every set collected below it,
        and their plans, are the kept ones too."""
        if self._kept is not None and position_context is None:
            grouped_field_set = self._kept.roots.setdefault(root_type, grouped_field_set)
        return super().execute_root_grouped_field_set(
            root_type, root_value, grouped_field_set, serially, position_context
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        if not self._planning or position_context is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        return self.site(parent_type, grouped_field_set).run(self, source_value, path)

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        completer = _completer(return_type) if self._planning else None
        if completer is None or position_context is not None:
            return super().complete_value(
                return_type, field_details_list, info, path, result, position_context
            )
        key = (info.parent_type, info.field_name)
        ref = self._refs.get(key)
        if ref is None:
            field_def = self.schema.get_field(*key)
            assert field_def is not None  # graphql-core is completing it
            ref = self._refs[key] = _Ref(*key, field_def)
        return completer(self, _Call(ref, field_details_list, info.path, info), path, result)


__all__ = ["GraphQLError", "PlannedExecutor", "plain_selection", "rows_factory"]
