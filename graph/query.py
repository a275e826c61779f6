"""Root query fields: they check arguments, then delegate to `models` through the snapshot."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.connection import ClusterConnection, ClusterEdge, PageInfo
from graph.context import Context, Info
from graph.enums import Direction, OrderField
from graph.filters import ClusterFilterInput
from graph.keys import key_after, parse_cluster_id, position_of_key
from graph.permissions import IsAdmin
from graph.types import Cluster, ClusterPage, Pagination
from models import clusters as clusters_db
from models import listing
from models.errors import InvalidInput
from models.limits import DEFAULT_PAGE, MAX_PAGE
from models.listing import ClusterFilter, Order, Position, position_of

FilterArg = Annotated[
    ClusterFilterInput | None,
    strawberry.argument(description="Only clusters matching every condition given."),
]
OrderByArg = Annotated[OrderField, strawberry.argument(description="Sort key (then id).")]
DirectionArg = Annotated[Direction, strawberry.argument(description="ASC or DESC.")]


def _page_size(name: str, value: int) -> int:
    if not 1 <= value <= MAX_PAGE:
        raise InvalidInput(f"{name} must be between 1 and {MAX_PAGE}, got {value}")
    return value


async def _any_behind(
    context: Context, where: ClusterFilter, walk: Order, cursor: Position | None
) -> bool:
    """Whether the walk left anything behind it: the cursor's cluster, or any before it."""
    if cursor is None:
        return False
    back = Order(walk.field, walk.direction.reversed())
    return await context.snapshot.run(lambda conn: listing.any_from(conn, where, back, cursor))


@strawberry.type(description="Reading clusters. Every field needs a token with Admin.")
class Query:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description=(
            "Live clusters, `limit` at a time, in the order asked (id by default). Pass the "
            'previous page\'s pagination.nextKey as `nextKey` to continue; null or "" starts '
            "from the first page. With the default order and no filter nextKey is a cluster "
            "id; otherwise an opaque cursor valid only for the same filter and order."
        ),
    )
    async def clusters(
        self,
        info: Info,
        limit: Annotated[
            int, strawberry.argument(description=f"Page size, 1 to {MAX_PAGE}.")
        ] = DEFAULT_PAGE,
        next_key: Annotated[
            str | None,
            strawberry.argument(description="Where to continue: the previous page's nextKey."),
        ] = None,
        filter: FilterArg = None,
        order_by: OrderByArg = OrderField.ID,
        direction: DirectionArg = Direction.ASC,
    ) -> ClusterPage:
        context = info.context
        _page_size("limit", limit)
        where = filter.to_domain() if filter is not None else ClusterFilter()
        order = Order(order_by, direction)
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

    @strawberry.field(
        permission_classes=[IsAdmin],
        description=(
            "The same listing as a Relay connection: `first` clusters after `after`, or "
            f"`last` clusters before `before` (1 to {MAX_PAGE}; `first` defaults to "
            f"{DEFAULT_PAGE}). Cursors are opaque and valid only for the same filter and order."
        ),
    )
    async def clusters_connection(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description="Page forward.")] = None,
        after: Annotated[str | None, strawberry.argument(description="An endCursor.")] = None,
        last: Annotated[int | None, strawberry.argument(description="Page backward.")] = None,
        before: Annotated[str | None, strawberry.argument(description="A startCursor.")] = None,
        filter: FilterArg = None,
        order_by: OrderByArg = OrderField.ID,
        direction: DirectionArg = Direction.ASC,
    ) -> ClusterConnection:
        context = info.context
        if first is not None and last is not None:
            raise InvalidInput("give first (with after) or last (with before), not both")
        if last is None and before is not None:
            raise InvalidInput("before pages backward: give it with last")
        if last is not None and after is not None:
            raise InvalidInput("after pages forward: give it with first")
        where = filter.to_domain() if filter is not None else ClusterFilter()
        order = Order(order_by, direction)
        backward = last is not None
        if last is not None:
            size = _page_size("last", last)
        else:
            size = _page_size("first", DEFAULT_PAGE if first is None else first)
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

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="One live cluster by id; null if the id is unknown or the cluster removed.",
    )
    async def cluster(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The cluster id.")],
    ) -> Cluster | None:
        cluster_id = parse_cluster_id(id)
        if cluster_id is None:
            return None
        record = await info.context.snapshot.run(
            lambda conn: clusters_db.get_live(conn, cluster_id)
        )
        return None if record is None else Cluster.from_record(record)
