"""Pages of clusters, their types and how they are read, for both root fields: keyset pages
(`clusters`) and Relay connections (`clustersConnection`,
https://relay.dev/graphql/connections.htm), read in the request's snapshot.

Where a walk continues: the default order without filters keeps the plain id of the last cluster
as its key (what the vendor's clients expect); any other order or any filter gets an opaque
signed cursor (`graph.cursors`), as every Relay cursor is.
"""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from graph.context import Context, Info
from graph.scalars import parse_cluster_id
from graph.types import Cluster, cluster_rows
from models import listing
from models.clusters import id_assigned
from models.errors import InvalidInput, NotFound
from models.limits import DEFAULT_PAGE, MAX_PAGE
from models.listing import ClusterFilter, Order, Position, position_of
from models.records import ClusterRecord


@strawberry.type(description="Key-based pagination of a clusters page.")
class Pagination:
    limit: int = strawberry.field(description="The limit applied to this page.")
    next_key: str | None = strawberry.field(
        description="Pass as nextKey to get the following page; null on the last page."
    )


@strawberry.type(description="One page of clusters, read from one consistent snapshot.")
class ClusterPage:
    pagination: Pagination = strawberry.field(description="How to get the next page.")
    clusters: list[Cluster] = strawberry.field(description="The clusters of this page, in order.")
    matching: strawberry.Private[ClusterFilter]
    counted: strawberry.Private[int | None] = None  # read with the page, when asked for

    @strawberry.field(description="Live clusters matching the filter, whatever page this is.")
    async def total_count(self, info: Info) -> int:
        return await _count_matching(info, self.matching, self.counted)


async def _count_matching(info: Info, where: ClusterFilter, counted: int | None) -> int:
    """Counted only when asked for, in the same snapshot as the page: `counted` when it was
    read with the page already."""
    if counted is not None:
        return counted
    return await info.context.snapshot.run(lambda conn: listing.count_matching(conn, where))


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More clusters follow endCursor.")
    has_previous_page: bool = strawberry.field(description="Clusters precede startCursor.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge.")


@strawberry.type(description="A cluster and its cursor.")
class ClusterEdge:
    cursor: str = strawberry.field(description="Pass as after or before to page from here.")
    node: Cluster = strawberry.field(description="The cluster.")


@strawberry.type(description="A page of clusters as a Relay connection.")
class ClusterConnection:
    edges: list[ClusterEdge] = strawberry.field(description="The clusters of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Where this page stands in the list.")
    matching: strawberry.Private[ClusterFilter]
    counted: strawberry.Private[int | None] = None  # read with the page, when asked for

    @strawberry.field(description="Live clusters matching the filter, whatever page this is.")
    async def total_count(self, info: Info) -> int:
        return await _count_matching(info, self.matching, self.counted)


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
    context: Context,
    limit: int,
    next_key: str | None,
    where: ClusterFilter,
    order: Order,
    *,
    counted: bool = False,
) -> ClusterPage:
    """`limit` clusters after `next_key` (the previous page's `nextKey`); with `counted` (the
    operation selects `totalCount`), their count read with them."""
    page_size("limit", limit)
    after = await position_of_key(context, next_key, where, order, name="next key")
    records, more, total = await _page(context, where, order, after, limit, counted)
    next_key_out = key_after(context, records[-1], where, order) if more else None
    return ClusterPage(
        pagination=Pagination(limit=limit, next_key=next_key_out),
        clusters=cluster_rows(records),  # type: ignore[arg-type]  # a Sequence[Cluster]
        matching=where,
        counted=total,
    )


async def _page(
    context: Context,
    where: ClusterFilter,
    order: Order,
    after: Position | None,
    limit: int,
    counted: bool,
) -> tuple[Sequence[ClusterRecord], bool, int | None]:
    """A page of `limit` after `after`, whether more follow, and with `counted` the count of
    all that match (None without), read with the page."""
    if counted:
        return await context.snapshot.run(
            lambda conn: listing.page_and_count(conn, where, order, after, limit)
        )
    records, more = await context.snapshot.run(
        lambda conn: listing.page(conn, where, order, after, limit)
    )
    return records, more, None


async def _any_behind(
    context: Context, where: ClusterFilter, walk: Order, cursor: Position | None
) -> bool:
    """Whether the walk left anything behind it: the cursor's cluster, or any before it."""
    if cursor is None:
        return False
    back = Order(walk.field, walk.direction.reversed())
    return await context.snapshot.run(lambda conn: listing.any_from(conn, where, back, cursor))


def relay_arguments(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> tuple[bool, int, str | None]:
    """Relay's arguments, checked: whether the page goes backward, its size, and the cursor
    it starts from."""
    if first is not None and last is not None:
        raise InvalidInput("give first (with after) or last (with before), not both")
    if last is None and before is not None:
        raise InvalidInput("before pages backward: give it with last")
    if last is not None and after is not None:
        raise InvalidInput("after pages forward: give it with first")
    if last is not None:
        return True, page_size("last", last), before
    return False, page_size("first", DEFAULT_PAGE if first is None else first), after


def page_info(cursors: list[str], more: bool, behind: bool, backward: bool) -> PageInfo:
    """Where a page of `cursors` stands: `more` follow it in its walk, `behind` precede it."""
    return PageInfo(
        has_next_page=behind if backward else more,
        has_previous_page=more if backward else behind,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


async def connection(
    context: Context,
    where: ClusterFilter,
    order: Order,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    counted: bool = False,
) -> ClusterConnection:
    """`first` clusters after `after`, or `last` clusters before `before`, with their cursors;
    with `counted` (the operation selects `totalCount`), their count read with them."""
    backward, size, cursor = relay_arguments(first, after, last, before)
    walk = Order(order.field, order.direction.reversed()) if backward else order
    start = (
        context.cursors.decode(cursor, where, order, name="before" if backward else "after")
        if cursor
        else None
    )
    found, more, total = await _page(context, where, walk, start, size, counted)
    behind = await _any_behind(context, where, walk, start)
    records = list(found)
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
        page_info=page_info([e.cursor for e in edges], more, behind, backward),
        matching=where,
        counted=total,
    )
