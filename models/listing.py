"""Listing clusters: filters, orders and keyset pages (never OFFSET), and filtered counts.

A page continues strictly after a `Position` (the sort value and id of the last cluster seen),
so its cost does not depend on its depth, and clusters inserted, updated or removed meanwhile
never make a walk skip or repeat one that kept its sort value. Ties break by id, in the same
direction as the order, so every order is total.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from models.clusters import CLUSTER_COLUMNS
from models.driver_statements import CLUSTER_CODECS, fetch_statement
from models.records import ClusterRecord, Rows
from models.tables import clusters

SortValue = int | str | datetime
T = TypeVar("T")
# Up to this many live clusters of the providers a page filters by, SQLite reads them all and
# sorts them; more, it walks the order's index (`_page_conditions`). About sqrt(limit x 1 M).
FEW_BY_PROVIDER = 10_000


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
    stale: bool | None = None  # last report before `stale_before`
    # The instant `stale` is judged against: the request's now minus CLUSTERQL_STALE_AFTER.
    # Not part of what the filter *is* (equality, cursor fingerprints): a walk's pages are
    # judged at their own instants, as clusters go stale while it runs.
    stale_before: datetime | None = field(default=None, compare=False)

    @property
    def is_empty(self) -> bool:
        return self == ClusterFilter()

    def identity(self) -> dict[str, Any]:
        """What the filter asks for, without the instant it is judged at (cursor fingerprints);
        without `stale` when unset, so cursors from before it existed stay valid."""
        fields: dict[str, Any] = {k: getattr(self, k) for k in _IDENTITY}
        if self.stale is None:
            del fields["stale"]
        return fields


_IDENTITY = [f.name for f in fields(ClusterFilter) if f.name != "stale_before"]


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


def _conditions(
    dialect: str,
    f: ClusterFilter,
    *,
    provider_index: bool = True,
    stale_index: bool | None = None,
    live: bool = True,
) -> list[ColumnElement[bool]]:
    """The filter as SQL; `provider_index=False` keeps SQLite off the provider index;
    `stale_index` True steers it onto the last report's index, False off it; `live=False`
    leaves liveness out (a removed cluster's tombstone then matches too)."""
    c = clusters.c
    where: list[ColumnElement[bool]] = [c.removed_at.is_(None)] if live else []
    if f.ids is not None:
        where.append(c.id.in_(f.ids))
    if f.name is not None:
        where.append(c.name.icontains(f.name, autoescape=True))
    if f.providers is not None:
        provider = c.provider if provider_index else _unindexed(c.provider)
        where.append(provider.in_(f.providers))
    if f.controller_statuses is not None:
        where.append(c.controller_status.in_(f.controller_statuses))
    if f.regions is not None:
        where.append(_any_region(dialect, f.regions))
    if f.has_unhealthy_nodes is not None:
        unhealthy = c.failed_nodes_count + c.failed_to_install_nodes_count + c.disabled_nodes_count
        where.append(unhealthy > 0 if f.has_unhealthy_nodes else unhealthy == 0)
    if f.stale is not None:
        where.append(_staleness(f, indexed=stale_index))
    return where


def _staleness(f: ClusterFilter, *, indexed: bool | None = None) -> ColumnElement[bool]:
    """Last report before (stale) or from (not stale) the cutoff. `indexed` (SQLite only): True
    tells its planner that few rows match, so it reads them on the index and sorts them rather
    than walking the order's index (https://www.sqlite.org/lang_corefunc.html#likelihood);
    False keeps it off that index."""
    if f.stale_before is None:
        raise ValueError("a stale filter needs the instant it is judged at (stale_before)")
    column: ColumnElement[datetime] = clusters.c.controller_last_updated
    if indexed is False:
        column = _unindexed(column)
    cutoff = bindparam(None, f.stale_before, type_=clusters.c.controller_last_updated.type)
    condition = column < cutoff if f.stale else column >= cutoff
    if indexed:
        # Typed as a number: SQLAlchemy writes a boolean function as `likelihood(...) = 1`.
        return func.likelihood(condition, literal_column("0.0001"), type_=Integer)
    return condition


def conditions(
    conn: AsyncConnection, where: ClusterFilter, *, on_staleness: bool = False
) -> list[ColumnElement[bool]]:
    """`where` as SQL conditions on the live clusters (for counts over them). `on_staleness`:
    read on the last report's index (SQLite's planner otherwise prefers the provider's, and
    checks the staleness of every cluster of the provider)."""
    if on_staleness and conn.dialect.name == "sqlite":
        return _conditions("sqlite", where, provider_index=False, stale_index=True)
    return _conditions(conn.dialect.name, where)


def _unindexed(column: ColumnElement[T]) -> ColumnElement[T]:
    # SQLite's way of keeping a term from using an index, a unary +:
    # https://www.sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


async def _page_conditions(
    conn: AsyncConnection, where: ClusterFilter, order: Order
) -> list[ColumnElement[bool]]:
    """The filter as SQL for a page (or a look behind one) in `order`.

    Given `provider IN (...)`, SQLite, which keeps no statistics here (nothing runs ANALYZE),
    always reads ix_clusters_live_provider_id and then sorts every cluster of those providers,
    for each page: hundreds of ms for a common provider at a million clusters. Walking the
    order's own index instead and testing the provider row by row meets a match every
    clusters / matches rows: seconds for a provider with a handful of clusters. So a page first
    counts the providers' clusters on their index, stopping past `FEW_BY_PROVIDER` (under a
    millisecond): few, it reads and sorts them all; more, it walks the order's index, where one
    row in 100 matches or more at a million clusters. PostgreSQL chooses by its statistics; the
    id order has (provider, id) for its own.

    `stale` is the same question on ix_clusters_live_controller_last_updated_id, whose range is
    either side of the cutoff: few, the page reads and sorts them; many, it walks the order's
    index and tests each cluster's last report (the order by last report walks that index).
    """
    dialect = conn.dialect.name
    if dialect != "sqlite":
        return _conditions(dialect, where)
    c = clusters.c
    provider_index, stale_index = True, None
    if where.providers is not None and order.field is not OrderField.ID:
        provider_index = await _few(conn, c.provider.in_(where.providers))
    if where.stale is not None and order.field is not OrderField.CONTROLLER_LAST_UPDATED:
        stale_index = await _few(conn, _staleness(where))
    return _conditions(dialect, where, provider_index=provider_index, stale_index=stale_index)


async def _few(conn: AsyncConnection, condition: ColumnElement[bool]) -> bool:
    """Whether at most `FEW_BY_PROVIDER` live clusters meet `condition` (read on its index)."""
    probe = select(clusters.c.id).where(clusters.c.removed_at.is_(None), condition)
    counted = select(func.count()).select_from(probe.limit(FEW_BY_PROVIDER + 1).subquery())
    return bool((await conn.execute(counted)).scalar_one() <= FEW_BY_PROVIDER)


def _any_region(dialect: str, regions: Sequence[str]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        wanted = postgresql.array(list(regions), type_=postgresql.TEXT)
        matches: ColumnElement[bool] = clusters.c.regions.op("?|", return_type=postgresql.BOOLEAN)(
            wanted
        )
        return matches
    each = func.json_each(clusters.c.regions).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(list(regions))))


def _after(
    dialect: str, order: Order, after: Position, *, inclusive: bool = False
) -> list[ColumnElement[bool]]:
    """Where a walk in `order` goes on after `after` (or from it): alternatives, each a range.
    The position's values may be named bind parameters (`_statement`'s, given per execution).

    PostgreSQL seeks a B-tree straight to a row value, `(value, id) > (:value, :id)`. SQLite
    seeks such a row value on its first column only (the second, id, is the rowid), then steps
    over every cluster that shares the value: deep inside a long run of ties (a million clusters
    share a handful of nodes_count values) a page would cost the whole run. So on SQLite the
    condition is split into "same value, later id" and "later value", two ranges it seeks.
    """
    column = clusters.c[str(order.field)]
    ascending = order.direction is Direction.ASC
    value, id_ = _bound(after.value, column), _bound(after.id, clusters.c.id)
    if order.field is OrderField.ID:
        return [_later(clusters.c.id, id_, ascending, inclusive)]
    if dialect == "sqlite":
        return [
            (column == value) & _later(clusters.c.id, id_, ascending, inclusive),
            _later(column, value, ascending, inclusive=False),
        ]
    return [_later(tuple_(column, clusters.c.id), tuple_(value, id_), ascending, inclusive)]


def _bound(value: Any, column: ColumnElement[Any]) -> BindParameter[Any]:
    return value if isinstance(value, BindParameter) else bindparam(None, value, type_=column.type)


def _later(column: Any, bound: Any, ascending: bool, inclusive: bool) -> ColumnElement[bool]:
    if ascending:
        return column >= bound if inclusive else column > bound  # type: ignore[no-any-return]
    return column <= bound if inclusive else column < bound  # type: ignore[no-any-return]


async def _selected(
    conn: AsyncConnection, where: ClusterFilter, order: Order, after: Position | None, *columns: Any
) -> Select[Any] | CompoundSelect[Any]:
    """The matching clusters after `after` in `order`: one SELECT, or a UNION ALL of ranges."""
    conditions = await _page_conditions(conn, where, order)
    return _ranges(conn.dialect.name, conditions, order, after, columns)


def _ranges(
    dialect: str,
    conditions: list[ColumnElement[bool]],
    order: Order,
    after: Position | None,
    columns: Sequence[Any],
) -> Select[Any] | CompoundSelect[Any]:
    if after is None:
        return select(*columns).where(*conditions)
    arms = [select(*columns).where(*conditions, c) for c in _after(dialect, order, after)]
    return arms[0] if len(arms) == 1 else union_all(*arms)


def _ordered(
    query: Select[Any] | CompoundSelect[Any], order: Order
) -> Select[Any] | CompoundSelect[Any]:
    # A UNION ALL is sorted by its own output columns; SQLite merges its arms, each already in
    # index order, without a sort.
    columns = query.selected_columns
    column, id_ = columns[str(order.field)], columns["id"]
    if order.direction is Direction.ASC:
        return query.order_by(column.asc(), id_.asc())
    return query.order_by(column.desc(), id_.desc())


# A page's statement, made once per filter, order, limit and dialect when the filter's SQL
# depends on nothing but itself (building it costs about 0.3 ms of Python, a tenth of a small
# page); a continued page gives its position as `after_value` and `after_id`.
STATEMENTS_KEPT = 256


def _statement_is_fixed(dialect: str, where: ClusterFilter, order: Order) -> bool:
    """Whether the SQL of `where` in `order` is always the same: no instant of staleness in it,
    and no choice of index that SQLite's page makes by counting first (`_page_conditions`)."""
    if where.stale is not None:
        return False
    return dialect != "sqlite" or where.providers is None or order.field is OrderField.ID


@functools.lru_cache(maxsize=STATEMENTS_KEPT)
def _statement(
    dialect: str, where: ClusterFilter, order: Order, continued: bool, limit: int
) -> Select[Any] | CompoundSelect[Any]:
    after = None
    if continued:
        column = clusters.c[str(order.field)]
        after = Position(
            value=bindparam("after_value", type_=column.type),  # type: ignore[arg-type]
            id=bindparam("after_id", type_=clusters.c.id.type),  # type: ignore[arg-type]
        )
    query = _ranges(dialect, _conditions(dialect, where), order, after, CLUSTER_COLUMNS)
    return _ordered(query, order).limit(limit + 1)


@functools.lru_cache(maxsize=STATEMENTS_KEPT)
def _count_statement(dialect: str, where: ClusterFilter) -> Select[int]:
    return select(func.count()).select_from(clusters).where(*_conditions(dialect, where))


@functools.lru_cache(maxsize=STATEMENTS_KEPT)
def _counted_statement(
    dialect: str, where: ClusterFilter, order: Order, continued: bool, limit: int
) -> Select[Any] | None:
    """The page's statement with one more column, the count of every matching cluster (a scalar
    subquery, not correlated with the page: both databases compute it once); None when the page
    is a UNION ALL of ranges."""
    query = _statement(dialect, where, order, continued, limit)
    if not isinstance(query, Select):
        return None
    total = _count_statement(dialect, where).correlate(None).scalar_subquery()
    return query.add_columns(total.label("matching"))


def _position_parameters(after: Position | None) -> dict[str, Any]:
    """The parameters of a fixed statement (`_statement`) that continue after `after`."""
    return {} if after is None else {"after_value": after.value, "after_id": after.id}


async def count_matching(conn: AsyncConnection, where: ClusterFilter) -> int:
    """How many live clusters satisfy `where`."""
    if where.stale is None:
        query = _count_statement(conn.dialect.name, where)
        rows = await fetch_statement(conn, query)
        if rows is not None:
            return int(rows[0][0])
    else:
        # a stale filter's SQL holds the instant it is judged at: made anew each time
        query = _count_statement.__wrapped__(conn.dialect.name, where)
    return (await conn.execute(query)).scalar_one()


async def page(
    conn: AsyncConnection,
    where: ClusterFilter,
    order: Order,
    after: Position | None,
    limit: int,
) -> tuple[Sequence[ClusterRecord], bool]:
    """Up to `limit` matching clusters after `after` in `order`, and whether more follow.

    A fixed statement (`_statement_is_fixed`) runs through the driver when it can, and its
    records are its driver rows (`Rows`), each decoded when read."""
    dialect = conn.dialect.name
    if _statement_is_fixed(dialect, where, order):
        query = _statement(dialect, where, order, after is not None, limit)
        position = _position_parameters(after)
        found = await fetch_statement(conn, query, position)
        if found is not None:
            return Rows(found[:limit], CLUSTER_CODECS[dialect]), len(found) > limit
        rows = await conn.execute(query, position)
    else:
        query = _ordered(await _selected(conn, where, order, after, *CLUSTER_COLUMNS), order)
        rows = await conn.execute(query.limit(limit + 1))
    records = [ClusterRecord._make(row) for row in rows]
    return records[:limit], len(records) > limit


async def page_and_count(
    conn: AsyncConnection,
    where: ClusterFilter,
    order: Order,
    after: Position | None,
    limit: int,
) -> tuple[Sequence[ClusterRecord], bool, int]:
    """`page`, and `count_matching` of the same filter: in one statement when the page's is
    fixed, a single SELECT and run by the driver (a statement, and a trip to the database, fewer
    than reading them apart), else as those two read them."""
    dialect = conn.dialect.name
    if _statement_is_fixed(dialect, where, order):
        query = _counted_statement(dialect, where, order, after is not None, limit)
        position = _position_parameters(after)
        found = None if query is None else await fetch_statement(conn, query, position)
        if found == []:  # an empty page carries no count
            return Rows(found, CLUSTER_CODECS[dialect]), False, await count_matching(conn, where)
        if found is not None:
            total = int(found[0][-1])
            rows = [row[:-1] for row in found[:limit]]
            return Rows(rows, CLUSTER_CODECS[dialect]), len(found) > limit, total
    records, more = await page(conn, where, order, after, limit)
    return records, more, await count_matching(conn, where)


async def any_from(
    conn: AsyncConnection, where: ClusterFilter, order: Order, start: Position
) -> bool:
    """Whether any matching cluster is at `start` or comes after it in `order` (Relay page info)."""
    conditions = await _page_conditions(conn, where, order)
    arms = [
        select(clusters.c.id).where(*conditions, c)
        for c in _after(conn.dialect.name, order, start, inclusive=True)
    ]
    query = arms[0] if len(arms) == 1 else union_all(*arms)
    return (await conn.execute(query.limit(1))).first() is not None


def filter_conditions(
    dialect: str, where: ClusterFilter, *, live: bool = True
) -> list[ColumnElement[bool]]:
    """`where` as SQL conditions on the clusters table, for other statements of `models`."""
    return _conditions(dialect, where, live=live)
