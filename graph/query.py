"""Root query fields: they read their arguments, then delegate (pages to `graph.pagination`)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from graph import node_pages, pagination
from graph.context import Info
from graph.enums import Direction, OrderField
from graph.filters import ClusterFilterInput
from graph.node_pages import NodeConnection, NodeFilterInput
from graph.pagination import ClusterConnection, ClusterPage
from graph.permissions import IsAdmin
from graph.scalars import parse_cluster_id
from graph.summary import FleetSummary, fleet_summary
from graph.types import Cluster
from models.clusters import get_live
from models.limits import DEFAULT_PAGE, MAX_PAGE
from models.listing import ClusterFilter, Order
from models.node_search import NodeFilter

FilterArg = Annotated[
    ClusterFilterInput | None,
    strawberry.argument(description="Only clusters matching every condition given."),
]
OrderByArg = Annotated[OrderField, strawberry.argument(description="Sort key (then id).")]
DirectionArg = Annotated[Direction, strawberry.argument(description="ASC or DESC.")]


def _selects(info: Info, name: str) -> bool:
    """Whether the operation selects the field `name` of this field's value: directly, or in
    a fragment (whatever its type condition or its directives say: this tells what the answer
    may need, not what it will hold)."""
    raw = info._raw_info
    seen: set[str] = set()
    return any(_within(node.selection_set, name, raw.fragments, seen) for node in raw.field_nodes)


def _within(
    selection_set: SelectionSetNode | None,
    name: str,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> bool:
    """`_selects` in one selection set; each fragment is looked into once (`seen`). A
    function of the module, not a closure calling itself: that closure and its cell refer to
    each other, and through the resolve info to the request's context, whose rows would then
    wait for the cyclic garbage collector."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            if selection.name.value == name:
                return True
        elif isinstance(selection, InlineFragmentNode):
            if _within(selection.selection_set, name, fragments, seen):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None and fragment.name.value not in seen:
                seen.add(fragment.name.value)
                if _within(fragment.selection_set, name, fragments, seen):
                    return True
    return False


def _domain(info: Info, given: ClusterFilterInput | None) -> ClusterFilter:
    stale_before = info.context.stale_before
    return given.to_domain(stale_before) if given is not None else ClusterFilter()


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
        where = _domain(info, filter)
        return await pagination.clusters_page(
            info.context,
            limit,
            next_key,
            where,
            Order(order_by, direction),
            counted=_selects(info, "totalCount"),
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
        where = _domain(info, filter)
        order = Order(order_by, direction)
        return await pagination.connection(
            info.context,
            where,
            order,
            first=first,
            after=after,
            last=last,
            before=before,
            counted=_selects(info, "totalCount"),
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
        record = await info.context.snapshot.run(lambda conn: get_live(conn, cluster_id))
        return None if record is None else Cluster.from_record(record)

    @strawberry.field(
        permission_classes=[IsAdmin],
        description=(
            "The live clusters matching the filter (all of them without one) and their nodes, "
            "counted: what a dashboard's header shows, in one cheap query. Read from one "
            "snapshot, so every part adds up."
        ),
    )
    async def fleet_summary(self, info: Info, filter: FilterArg = None) -> FleetSummary:
        return await fleet_summary(info, _domain(info, filter))

    @strawberry.field(
        permission_classes=[IsAdmin],
        description=(
            "The nodes of every live cluster matching the filter, by id, as a Relay "
            f"connection: `first` after `after`, or `last` before `before` (1 to {MAX_PAGE}; "
            f"`first` defaults to {DEFAULT_PAGE}). Cursors are valid only for the same filter."
        ),
    )
    async def nodes(
        self,
        info: Info,
        filter: Annotated[
            NodeFilterInput | None,
            strawberry.argument(description="Only nodes matching every condition given."),
        ] = None,
        first: Annotated[int | None, strawberry.argument(description="Page forward.")] = None,
        after: Annotated[str | None, strawberry.argument(description="An endCursor.")] = None,
        last: Annotated[int | None, strawberry.argument(description="Page backward.")] = None,
        before: Annotated[str | None, strawberry.argument(description="A startCursor.")] = None,
    ) -> NodeConnection:
        where = filter.to_domain() if filter is not None else NodeFilter()
        return await node_pages.connection(
            info.context, where, first=first, after=after, last=last, before=before
        )
