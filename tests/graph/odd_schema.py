"""A small schema of test-only types whose data is wrong in every way the product's database cannot
be: the product's executor must answer any Strawberry schema exactly as the stock one does.

What is wrong, and where: `GADGETS` holds one well-formed gadget and one gadget per kind of bad
value (a None in a non-null field, a string that is no value of the enum, an `Int` too large, a
NaN `Float`, a string for a `Boolean`, None and a number inside a `[String!]!`, a string inside
`[Int]!`, a custom scalar whose serializer raises, an attribute that raises when read). Lists are
given as `[Gadget!]!` (one bad item nulls the whole answer) and as `[Gadget]` (each bad item is
null with its own error). `Thing` is an interface and `Item` a union, one of whose values is of
no member type; resolvers are sync and async; lists nest; one field is refused by a permission.
Async resolvers with permission checks (`guarded*`, `sloppy`, `quietSecret`) take input objects,
enums, lists, IDs and relay global IDs (one that does not decode fails in conversion); their
checks are sync and async, read the arguments and the source, refuse, refuse silently and
return what is not a boolean.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, NewType

import strawberry
from graphql import GraphQLError
from hypothesis import strategies as st
from strawberry import relay
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types.scalar import ScalarDefinition

Kelvin = NewType("Kelvin", float)


def _kelvin(value: float) -> float:
    if value < 0:
        raise ValueError(f"{value} K is below absolute zero")
    return value


KelvinScalar: ScalarDefinition = strawberry.scalar(
    name="Kelvin", description="A temperature, never below 0.", serialize=_kelvin, parse_value=float
)


@strawberry.enum
class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


@strawberry.interface
class Thing:
    name: str


@strawberry.input
class Span:
    low: int = 0
    high: int | None = None
    names: list[str] | None = None


class _SpanGate(BasePermission):
    """Refuses a span that starts below 0, and any call given an argument named `info`
    (Strawberry hands that one to the resolver only)."""

    message = "a span starts at 0 or later"

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        span = kwargs.get("span")
        return "info" not in kwargs and (span is None or span.low >= 0)


class _FineOnly(BasePermission):
    """Refuses what is asked of anything but the fine gadget (a check per object)."""

    message = "only the fine gadget answers this"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return getattr(source, "name", None) == "fine"


class _NotABoolean(BasePermission):
    message = "never shown"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return 1  # type: ignore[return-value]


@strawberry.type
class Gadget(Thing):
    shade: Shade
    weight: int
    ratio: float
    note: str | None
    on: bool
    tags: list[str]
    scores: list[int | None]
    heat: Kelvin

    @strawberry.field
    async def later_shade(self) -> Shade:
        return self.shade

    @strawberry.field(permission_classes=[_FineOnly])
    async def guarded_echo(
        self, info: strawberry.Info, times: int = 1, span: Span | None = None
    ) -> str:
        low = 0 if span is None else span.low
        return f"{info.field_name}:{self.name}:{times}:{low}"

    @strawberry.field
    def echo(self, times: int = 1) -> str:
        if times < 0:
            raise ValueError("times must not be negative")
        return str(self.name) * min(times, 3)


@strawberry.type
class Widget(Thing):
    matrix: list[list[int]]
    sparse: list[list[int | None] | None] | None

    @strawberry.field
    async def parts(self) -> list[Widget]:
        if self.name == "cursed":
            raise RuntimeError("the parts of a cursed widget cannot be listed")
        return [Widget(name=f"{self.name}.part", matrix=[[1]], sparse=None)]

    @strawberry.field
    def first_gadget(self) -> Gadget | None:
        return GADGETS[0]


Item = Annotated[Gadget | Widget, strawberry.union("Item")]


def _gadget(name: Any = "fine", **changes: Any) -> Gadget:
    fields: dict[str, Any] = {
        "shade": Shade.DARK,
        "weight": 7,
        "ratio": 0.25,
        "note": None,
        "on": True,
        "tags": ["a", "b"],
        "scores": [1, None, 3],
        "heat": 300.0,
    }
    return Gadget(name=name, **{**fields, **changes})


class _ExplodingGadget(Gadget):
    """A gadget whose `weight` raises when read (a plain attribute to the schema)."""

    @property
    def weight(self) -> int:  # type: ignore[override]
        raise RuntimeError("weight exploded")


def _exploding() -> Gadget:
    gadget = object.__new__(_ExplodingGadget)
    vars(gadget).update({k: v for k, v in vars(_gadget("exploding")).items() if k != "weight"})
    return gadget


GADGETS: list[Gadget] = [
    _gadget(),
    _gadget(None),  # null in a non-null field
    _gadget("blue", shade="blue"),  # not a value of the enum
    _gadget("heavy", weight=2**40),  # outside Int
    _gadget("nan", ratio=float("nan")),  # Float refuses NaN
    _gadget("yes", on="yes"),  # Boolean refuses strings
    _gadget("tags", tags=["a", None, 3]),  # null inside [String!]!, and a number
    _gadget("scores", scores=[1, "x"]),  # a string inside [Int]!
    _gadget("cold", heat=-1.0),  # the scalar's serializer raises
    _exploding(),
]
WIDGETS = [
    Widget(name="plain", matrix=[[1, 2], [3]], sparse=[[1, None], None, []]),
    Widget(name="holey", matrix=[[1, None]], sparse=None),  # type: ignore[list-item]
    Widget(name="cursed", matrix=[], sparse=[None]),
]


class _Nobody(BasePermission):
    message = "nobody may read this"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


def _secret() -> str | None:
    return "never shown"


@strawberry.type
class OddQuery:
    @strawberry.field
    def gadgets(self) -> list[Gadget]:
        return GADGETS

    @strawberry.field
    def maybe_gadgets(self) -> list[Gadget | None] | None:
        return list[Gadget | None](GADGETS)

    @strawberry.field
    def gadget(self, index: int = 0) -> Gadget | None:
        return GADGETS[index]  # IndexError past the end

    @strawberry.field
    def fine_gadget(self) -> Gadget:
        return GADGETS[0]

    @strawberry.field
    async def widgets(self) -> list[Widget | None]:
        return list(WIDGETS)

    @strawberry.field
    async def things(self) -> list[Thing | None]:
        return [GADGETS[0], WIDGETS[0], GADGETS[2], WIDGETS[2]]

    @strawberry.field
    def items(self) -> list[Item | None]:
        return [GADGETS[0], WIDGETS[1], "neither"]  # type: ignore[list-item]

    secret: str | None = strawberry.field(resolver=_secret, permission_classes=[_Nobody])

    @strawberry.field(permission_classes=[_SpanGate])
    async def guarded_gadgets(
        self,
        info: strawberry.Info,
        span: Span | None = None,
        shade: Shade | None = None,
        indexes: list[int] | None = None,
        node: relay.GlobalID | None = None,
    ) -> list[Gadget | None] | None:
        if node is not None and node.node_id != "0":
            raise ValueError(f"no gadget {node.node_id}")
        low = 0 if span is None else span.low
        high = len(GADGETS) if span is None or span.high is None else span.high
        chosen = GADGETS[low:high] if indexes is None else [GADGETS[i] for i in indexes]
        names = None if span is None else span.names
        return [
            g
            for g in chosen
            if (shade is None or g.shade == shade) and (names is None or g.name in names)
        ]

    @strawberry.field(permission_classes=[_NotABoolean])
    async def sloppy(self) -> int | None:
        return 1

    @strawberry.field(extensions=[PermissionExtension([_FineOnly()], fail_silently=True)])
    async def quiet_secret(self) -> list[str] | None:
        return ["never shown"]

    @strawberry.field
    def sync_failure(self, fail: bool = True) -> int | None:
        if fail:
            raise ValueError("sync resolver failed")
        return 1

    @strawberry.field
    async def async_failure(self, fail: bool = True) -> int:
        if fail:
            raise ValueError("async resolver failed")
        return 2


@strawberry.type
class OddMutation:
    @strawberry.mutation
    def double(self, value: int) -> int:
        return value * 2  # beyond Int for large values

    @strawberry.mutation
    async def shout(self, text: str) -> str:
        if not text:
            raise ValueError("nothing to shout")
        return text.upper()

    @strawberry.mutation
    def gadget(self, index: int) -> Gadget:
        return GADGETS[index % len(GADGETS)]


class _QuietSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Errors are what these types are for: not worth a logged traceback each."""


def odd_schema() -> strawberry.Schema:
    """A fresh schema (its executor is swapped per run: see tests.graph.executors)."""
    return _QuietSchema(
        query=OddQuery,
        mutation=OddMutation,
        types=[Gadget, Widget],
        config=StrawberryConfig(scalar_map={Kelvin: KelvinScalar}),
    )


def odd_values(parent: str, field_name: str, argument: str) -> st.SearchStrategy[Any] | None:
    """Interesting argument values of the odd schema, for tests.graph.operations."""
    if argument == "index":
        return st.sampled_from([0, 1, 2, 5, 9, -1, 10, 99])
    if argument == "span":
        return st.sampled_from(
            [None, {}, {"low": 1, "high": 4}, {"low": -1}, {"names": ["fine", "heavy"]}]
        )
    if argument == "indexes":
        return st.sampled_from([None, [], [0, 2], [1, 99]])
    if argument == "node":
        return st.sampled_from([None, "R2FkZ2V0OjA=", "R2FkZ2V0OjE=", "not a global id"])
    if argument == "times":
        return st.sampled_from([0, 1, 2, -1])
    if argument == "value":
        return st.sampled_from([0, 21, 2**30, -(2**31)])
    return None
