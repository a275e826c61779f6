"""Root query fields: they check arguments, then delegate to `models` through the snapshot."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.keys import parse_cluster_id, parse_next_key
from graph.permissions import IsAdmin
from graph.types import Cluster, ClusterPage, Pagination
from models import clusters as clusters_db
from models.errors import InvalidInput

MAX_LIMIT = 100


@strawberry.type(description="Reading clusters. Every field needs a token with Admin.")
class Query:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description=(
            "Live clusters in id order, `limit` at a time. Pass the previous page's "
            'pagination.nextKey as `nextKey` to continue; null or "" starts from the first page.'
        ),
    )
    async def clusters(
        self,
        info: Info,
        limit: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 10,
        next_key: Annotated[
            str | None,
            strawberry.argument(description="Where to continue: the previous page's nextKey."),
        ] = None,
    ) -> ClusterPage:
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        after_id = parse_next_key(next_key)
        records, more = await info.context.snapshot.run(
            lambda conn: clusters_db.page_after(conn, after_id, limit)
        )
        return ClusterPage(
            pagination=Pagination(
                limit=limit, next_key=str(records[-1].id) if more and records else None
            ),
            clusters=[Cluster.from_record(r) for r in records],
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
