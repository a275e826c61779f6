"""Searching the nodes of every live cluster (SPEC §11 `nodes`): filters, keyset pages by node id
(never OFFSET) and filtered counts. Removing a cluster deletes its nodes, so every node row
belongs to a live cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from models.clusters import NODE_COLUMNS
from models.records import NodeRecord
from models.tables import nodes


@dataclass(frozen=True, slots=True)
class NodeFilter:
    """Conditions that must all hold; None means "no condition"."""

    statuses: tuple[str, ...] | None = None
    sensor_installed: bool | None = None
    sensor_versions: tuple[str, ...] | None = None
    name: str | None = None  # case-insensitive substring
    hostname: str | None = None  # case-insensitive substring
    internal_ip: str | None = None  # exact
    regions: tuple[str, ...] | None = None
    architectures: tuple[str, ...] | None = None
    cluster_ids: tuple[int, ...] | None = None


def _conditions(
    f: NodeFilter, dialect: str = "", *, page: bool = False
) -> list[ColumnElement[bool]]:
    """The filter as SQL. For a page on SQLite (which keeps no statistics), the lists of values
    are kept off their indexes: reading every match of `status IN (a, b)` to sort them by id
    costs a million rows for a common status, where walking the id order meets a match soon;
    a single value, and the exact address, have an index already in id order."""
    n = nodes.c
    where: list[ColumnElement[bool]] = []
    keep_off = page and dialect == "sqlite"
    for column, values in (
        (_off(n.status, keep_off, f.statuses), f.statuses),
        (_off(n.sensor_version, keep_off, f.sensor_versions), f.sensor_versions),
        (n.region, f.regions),
        (n.architecture, f.architectures),
        (n.cluster_id, f.cluster_ids),
    ):
        if values is not None:
            where.append(column.in_(values))
    return [*where, *_more(f)]


def _off(column: ColumnElement[str], keep_off: bool, values: tuple[str, ...] | None) -> Any:
    if keep_off and values is not None and len(values) > 1:
        return UnaryExpression(column, operator=custom_op("+"), type_=column.type)
    return column


def _more(f: NodeFilter) -> list[ColumnElement[bool]]:
    n = nodes.c
    where: list[ColumnElement[bool]] = []
    if f.sensor_installed is not None:
        where.append(n.sensor_installed.is_(f.sensor_installed))
    for column, text in ((n.name, f.name), (n.hostname, f.hostname)):
        if text is not None:
            where.append(column.icontains(text, autoescape=True))
    if f.internal_ip is not None:
        where.append(n.internal_ip == f.internal_ip)
    return where


async def page(
    conn: AsyncConnection, where: NodeFilter, after: int | None, limit: int, *, backward: bool
) -> tuple[list[NodeRecord], bool]:
    """Up to `limit` matching nodes after node id `after` (before it, descending, `backward`),
    and whether more follow."""
    conditions = _conditions(where, conn.dialect.name, page=True)
    if after is not None:
        conditions.append(nodes.c.id < after if backward else nodes.c.id > after)
    order = nodes.c.id.desc() if backward else nodes.c.id.asc()
    query = select(*NODE_COLUMNS).where(*conditions).order_by(order).limit(limit + 1)
    records = [NodeRecord._make(row) for row in await conn.execute(query)]
    return records[:limit], len(records) > limit


async def any_from(conn: AsyncConnection, where: NodeFilter, start: int, *, backward: bool) -> bool:
    """Whether a matching node has id `start` or comes after it (before it, `backward`)."""
    bound = nodes.c.id <= start if backward else nodes.c.id >= start
    conditions = _conditions(where, conn.dialect.name, page=True)
    query = select(nodes.c.id).where(*conditions, bound).limit(1)
    return (await conn.execute(query)).first() is not None


async def count_matching(conn: AsyncConnection, where: NodeFilter) -> int:
    query = select(func.count()).select_from(nodes).where(*_conditions(where))
    return (await conn.execute(query)).scalar_one()
