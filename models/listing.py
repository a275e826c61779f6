"""Listing clusters: filters, orders and keyset pages (never OFFSET), and filtered counts.

A page continues strictly after a `Position` (the sort value and id of the last cluster seen),
so its cost does not depend on its depth, and clusters inserted, updated or removed meanwhile
never make a walk skip or repeat one that kept its sort value. Ties break by id, in the same
direction as the order, so every order is total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, exists, func, literal, select, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from models.clusters import CLUSTER_COLUMNS
from models.records import ClusterRecord
from models.tables import clusters

SortValue = int | str | datetime


class OrderField(StrEnum):
    """What a listing is sorted by (then by id)."""

    ID = "id"
    NAME = "name"
    MONITORED_AT = "monitored_at"
    CONTROLLER_LAST_UPDATED = "controller_last_updated"
    NODES_COUNT = "nodes_count"
    FAILED_NODES_COUNT = "failed_nodes_count"


class Direction(StrEnum):
    ASC = "asc"
    DESC = "desc"

    def reversed(self) -> Direction:
        return Direction.DESC if self is Direction.ASC else Direction.ASC


@dataclass(frozen=True, slots=True)
class ClusterFilter:
    """Conditions that must all hold; None means "no condition"."""

    ids: tuple[int, ...] | None = None
    name: str | None = None  # case-insensitive substring
    providers: tuple[str, ...] | None = None
    controller_statuses: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None  # any of them
    has_unhealthy_nodes: bool | None = None

    @property
    def is_empty(self) -> bool:
        return self == ClusterFilter()


@dataclass(frozen=True, slots=True)
class Order:
    field: OrderField = OrderField.ID
    direction: Direction = Direction.ASC

    @property
    def is_default(self) -> bool:
        return self == Order()


@dataclass(frozen=True, slots=True)
class Position:
    """Where a walk stands: the sort value and id of the last cluster it returned."""

    value: SortValue
    id: int


def position_of(record: ClusterRecord, field: OrderField) -> Position:
    value: SortValue = getattr(record, str(field))
    return Position(value=value, id=record.id)


def _conditions(dialect: str, f: ClusterFilter) -> list[ColumnElement[bool]]:
    c = clusters.c
    where: list[ColumnElement[bool]] = [c.removed_at.is_(None)]
    if f.ids is not None:
        where.append(c.id.in_(f.ids))
    if f.name is not None:
        where.append(c.name.icontains(f.name, autoescape=True))
    if f.providers is not None:
        where.append(c.provider.in_(f.providers))
    if f.controller_statuses is not None:
        where.append(c.controller_status.in_(f.controller_statuses))
    if f.regions is not None:
        where.append(_any_region(dialect, f.regions))
    if f.has_unhealthy_nodes is not None:
        unhealthy = c.failed_nodes_count + c.failed_to_install_nodes_count + c.disabled_nodes_count
        where.append(unhealthy > 0 if f.has_unhealthy_nodes else unhealthy == 0)
    return where


def _any_region(dialect: str, regions: Sequence[str]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        wanted = postgresql.array(list(regions), type_=postgresql.TEXT)
        matches: ColumnElement[bool] = clusters.c.regions.op("?|", return_type=postgresql.BOOLEAN)(
            wanted
        )
        return matches
    each = func.json_each(clusters.c.regions).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(list(regions))))


def _beyond(order: Order, after: Position, *, inclusive: bool = False) -> ColumnElement[bool]:
    column = clusters.c[str(order.field)]
    key = tuple_(column, clusters.c.id)
    bound = tuple_(
        bindparam(None, after.value, type_=column.type),
        bindparam(None, after.id, type_=clusters.c.id.type),
    )
    if order.direction is Direction.ASC:
        return key >= bound if inclusive else key > bound
    return key <= bound if inclusive else key < bound


def _ordered(query: Select[Any], order: Order) -> Select[Any]:
    column = clusters.c[str(order.field)]
    if order.direction is Direction.ASC:
        return query.order_by(column.asc(), clusters.c.id.asc())
    return query.order_by(column.desc(), clusters.c.id.desc())


async def count_matching(conn: AsyncConnection, where: ClusterFilter) -> int:
    """How many live clusters satisfy `where`."""
    query = select(func.count()).select_from(clusters).where(*_conditions(conn.dialect.name, where))
    return (await conn.execute(query)).scalar_one()


async def page(
    conn: AsyncConnection,
    where: ClusterFilter,
    order: Order,
    after: Position | None,
    limit: int,
) -> tuple[list[ClusterRecord], bool]:
    """Up to `limit` matching clusters after `after` in `order`, and whether more follow."""
    conditions = _conditions(conn.dialect.name, where)
    if after is not None:
        conditions.append(_beyond(order, after))
    query = _ordered(select(*CLUSTER_COLUMNS).where(*conditions), order).limit(limit + 1)
    records = [ClusterRecord._make(row) for row in await conn.execute(query)]
    return records[:limit], len(records) > limit


async def any_from(
    conn: AsyncConnection, where: ClusterFilter, order: Order, start: Position
) -> bool:
    """Whether any matching cluster is at `start` or comes after it in `order` (Relay page info)."""
    conditions = [*_conditions(conn.dialect.name, where), _beyond(order, start, inclusive=True)]
    query = select(clusters.c.id).where(*conditions).limit(1)
    return (await conn.execute(query)).first() is not None
