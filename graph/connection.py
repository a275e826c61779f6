"""`clustersConnection`: the same listing as a Relay connection (Relay Cursor Connections spec).

https://relay.dev/graphql/connections.htm
"""

from __future__ import annotations

import strawberry

from graph.context import Info
from graph.types import Cluster, count_matching
from models.listing import ClusterFilter


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

    @strawberry.field(description="Live clusters matching the filter, whatever page this is.")
    async def total_count(self, info: Info) -> int:
        return await count_matching(info, self.matching)
