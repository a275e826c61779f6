"""Clusters and nodes as plain objects: what a row says (without the ORM) and what a report says."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, NamedTuple, TypeVar, overload

T = TypeVar("T")


class ControllerStatus(StrEnum):
    """State of a cluster's runtime controller, as reported."""

    RUNNING = "running"
    STOPPED = "stopped"


class NodeStatus(StrEnum):
    """Monitoring state of one node (the vendor's five values)."""

    MONITORED = "monitored"
    MONITORED_WITH_SENSOR = "monitored_with_sensor"
    FAILED = "failed"
    INSTALLATION_FAILED = "installation_failed"
    DISABLED = "disabled"


RUNNING_STATUSES = frozenset({NodeStatus.MONITORED, NodeStatus.MONITORED_WITH_SENSOR})


class ClusterRecord(NamedTuple):
    """One live cluster as stored; the five counts always match its node rows."""

    id: int
    name: str
    monitored_at: datetime
    controller_version: str
    controller_status: str
    controller_last_updated: datetime
    provider: str
    regions: list[str]
    nodes_count: int
    running_nodes_count: int
    failed_nodes_count: int
    failed_to_install_nodes_count: int
    disabled_nodes_count: int


class NodeRecord(NamedTuple):
    """One node of a cluster as stored."""

    id: int
    cluster_id: int
    monitored_at: datetime
    name: str
    sensor_installed: bool
    sensor_last_updated: datetime | None
    sensor_version: str
    region: str
    architecture: str
    hostname: str
    internal_dns: str
    internal_ip: str
    status: str


# What a driver guarantees of every value of a column (a NOT NULL column of a typed database):
# never null, and of exactly this class once converted: `str`, `int`, `int32` (an int within
# 32 bits: PostgreSQL's integer), `bool`, or `value` (no class promised, only never null).
EXACT = frozenset({"str", "int", "int32", "bool", "value"})


class RowCodec(Generic[T]):
    """How one driver's rows become items: the conversion of each stored value, in the row's
    order (None: stored as the item holds it; a null stays null), then `make` (the converted
    values' tuple -> the item). `columns` gives each of the item's attributes its column, that
    column's conversion and what its driver guarantees of its values (`exact`, by column: see
    `EXACT`; None: nothing); `attributes` names them, in the row's order (one column may feed
    several attributes: `{"id": 0, "pk": 0}`)."""

    __slots__ = ("_converted", "_plain", "columns", "converts", "exact", "make")

    def __init__(
        self,
        converts: Sequence[Callable[[Any], Any] | None],
        make: Callable[[Sequence[Any]], T],
        attributes: Sequence[str] | Mapping[str, int],
        exact: Mapping[int, str] | None = None,
    ) -> None:
        self.converts = tuple(converts)
        self.make = make
        self.exact: Mapping[int, str] = dict(exact or {})
        assert set(self.exact.values()) <= EXACT, self.exact
        self._plain = all(c is None for c in self.converts)
        # the columns with a conversion, by index: a cluster's row has 3 of 13 (its instants
        # and its regions), and decoding visits only those (2.1 us a row before, 0.9 after)
        self._converted = tuple((i, c) for i, c in enumerate(self.converts) if c is not None)
        indexes = (
            attributes
            if isinstance(attributes, Mapping)
            else {name: i for i, name in enumerate(attributes)}
        )
        assert sorted(set(indexes.values())) == list(range(len(self.converts)))
        self.columns: Mapping[str, tuple[int, Callable[[Any], Any] | None, str | None]] = {
            name: (i, self.converts[i], self.exact.get(i)) for name, i in indexes.items()
        }

    def decode(self, row: Sequence[Any]) -> T:
        if self._plain:
            return self.make(row)
        if len(row) != len(self.converts):
            raise ValueError(f"a row of {len(row)} values for {len(self.converts)} columns")
        values = list(row)
        for i, convert in self._converted:
            value = values[i]
            if value is not None:
                values[i] = convert(value)
        return self.make(values)


class Rows(Sequence[T]):
    """Items as the driver returned their rows, each made an item (`codec.decode`) when read.

    A page's nodes are 2,000 rows; a reader that wants only the values a response carries
    (graph's planned executor) makes them straight from `rows`, through `codec.columns`."""

    __slots__ = ("codec", "rows")

    def __init__(self, rows: Sequence[Any], codec: RowCodec[T]) -> None:
        self.rows = rows
        self.codec = codec

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self.codec.decode(row) for row in self.rows[index]]
        return self.codec.decode(self.rows[index])

    def __iter__(self) -> Iterator[T]:
        return map(self.codec.decode, self.rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Rows({list(self)!r})"


@dataclass(slots=True, frozen=True)
class NodeCounts:
    """The five per-status counts of a cluster, derived from its nodes."""

    nodes: int = 0
    running: int = 0
    failed: int = 0
    failed_to_install: int = 0
    disabled: int = 0

    @classmethod
    def of(cls, statuses: list[str]) -> NodeCounts:
        return cls(
            nodes=len(statuses),
            running=sum(1 for s in statuses if s in RUNNING_STATUSES),
            failed=statuses.count(NodeStatus.FAILED),
            failed_to_install=statuses.count(NodeStatus.INSTALLATION_FAILED),
            disabled=statuses.count(NodeStatus.DISABLED),
        )


@dataclass(slots=True, frozen=True)
class NodeState:
    """One node as a controller (or the seeder) reports it."""

    name: str
    hostname: str
    status: NodeStatus
    sensor_installed: bool
    sensor_version: str = ""
    sensor_last_updated: datetime | None = None
    region: str = ""
    architecture: str = ""
    internal_dns: str = ""
    internal_ip: str = ""


@dataclass(slots=True, frozen=True)
class ClusterState:
    """The full state of one cluster as reported: after it applies, its nodes are exactly these."""

    name: str
    provider: str
    regions: list[str]
    controller_version: str
    controller_status: ControllerStatus
    nodes: list[NodeState]
