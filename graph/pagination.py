"""Pages of clusters, for both root fields: keyset pages (`clusters`) and Relay connections
(`clustersConnection`, https://relay.dev/graphql/connections.htm), read in the request's snapshot.

Where a walk continues: the default order without filters keeps the plain id of the last cluster
as its key (what the vendor's clients expect); any other order or any filter gets an opaque
signed cursor (`graph.cursors`), as every Relay cursor is.
"""

from __future__ import annotations

from graph.connection import ClusterConnection, ClusterEdge, PageInfo
from graph.context import Context
from graph.scalars import parse_cluster_id
from graph.types import Cluster, ClusterPage, Pagination
from models import listing
from models.clusters import id_assigned
from models.errors import InvalidInput, NotFound
from models.limits import DEFAULT_PAGE, MAX_PAGE
from models.listing import ClusterFilter, Order, Position, position_of
from models.records import ClusterRecord


def page_size(name: str, value: int) -> int:
    if not 1 <= value <= MAX_PAGE:
        raise InvalidInput(f"{name} must be between 1 and {MAX_PAGE}, got {value}")
    return value


def uses_plain_ids(where: ClusterFilter, order: Order) -> bool:
    return where.is_empty and order.is_default


async def position_of_key(
    context: Context, key: str | None, where: ClusterFilter, order: Order, *, name: str
) -> Position | None:
    """Where the walk continues after `key`; None for the first page."""
    if key is None or key == "":
        return None
    if not uses_plain_ids(where, order):
        return context.cursors.decode(key, where, order, name=name)
    after_id = parse_cluster_id(key)
    if after_id is None:
        raise InvalidInput(
            f"{name} {key!r} is not a key of this service: pass the previous page's "
            f"{name} unchanged, or an empty string for the first page"
        )
    if not await context.snapshot.run(lambda conn: id_assigned(conn, after_id)):
        raise NotFound(f"{name} {after_id} is not the id of any cluster")
    return Position(value=after_id, id=after_id)


def key_after(context: Context, record: ClusterRecord, where: ClusterFilter, order: Order) -> str:
    """The key that continues a walk after `record`."""
    if uses_plain_ids(where, order):
        return str(record.id)
    return context.cursors.encode(where, order, position_of(record, order.field))


async def clusters_page(
    context: Context, limit: int, next_key: str | None, where: ClusterFilter, order: Order
) -> ClusterPage:
    """`limit` clusters after `next_key` (the previous page's `nextKey`)."""
    page_size("limit", limit)
    after = await position_of_key(context, next_key, where, order, name="next key")
    records, more = await context.snapshot.run(
        lambda conn: listing.page(conn, where, order, after, limit)
    )
    next_key_out = key_after(context, records[-1], where, order) if more else None
    return ClusterPage(
        pagination=Pagination(limit=limit, next_key=next_key_out),
        clusters=[Cluster.from_record(r) for r in records],
        matching=where,
    )


async def _any_behind(
    context: Context, where: ClusterFilter, walk: Order, cursor: Position | None
) -> bool:
    """Whether the walk left anything behind it: the cursor's cluster, or any before it."""
    if cursor is None:
        return False
    back = Order(walk.field, walk.direction.reversed())
    return await context.snapshot.run(lambda conn: listing.any_from(conn, where, back, cursor))


async def connection(
    context: Context,
    where: ClusterFilter,
    order: Order,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> ClusterConnection:
    """`first` clusters after `after`, or `last` clusters before `before`, with their cursors."""
    if first is not None and last is not None:
        raise InvalidInput("give first (with after) or last (with before), not both")
    if last is None and before is not None:
        raise InvalidInput("before pages backward: give it with last")
    if last is not None and after is not None:
        raise InvalidInput("after pages forward: give it with first")
    backward = last is not None
    if last is not None:
        size = page_size("last", last)
    else:
        size = page_size("first", DEFAULT_PAGE if first is None else first)
    cursor = before if backward else after
    walk = Order(order.field, order.direction.reversed()) if backward else order
    start = (
        context.cursors.decode(cursor, where, order, name="before" if backward else "after")
        if cursor
        else None
    )
    records, more = await context.snapshot.run(
        lambda conn: listing.page(conn, where, walk, start, size)
    )
    behind = await _any_behind(context, where, walk, start)
    if backward:
        records.reverse()
    edges = [
        ClusterEdge(
            cursor=context.cursors.encode(where, order, position_of(r, order.field)),
            node=Cluster.from_record(r),
        )
        for r in records
    ]
    return ClusterConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=behind if backward else more,
            has_previous_page=more if backward else behind,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        matching=where,
    )
