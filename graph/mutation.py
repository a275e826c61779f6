"""Root mutations: controller reports and removals (SPEC §6, §8), each in its own transaction."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.inputs import ClusterReport
from graph.loaders import NodesKey
from graph.permissions import IsAdmin, IsController
from graph.scalars import parse_cluster_id
from graph.types import Cluster
from models import removal, reports


@strawberry.type(description="Writing clusters.")
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsController],
        description=(
            "Report the full state of one cluster (Admin, or a Controller token bound to its "
            "name; one per operation). The first report of a name registers the cluster; later "
            "reports replace its nodes, matched by name. Applies whole or not at all; returns "
            "the cluster as committed."
        ),
    )
    async def report_cluster(
        self,
        info: Info,
        input: Annotated[ClusterReport, strawberry.argument(description="The cluster's state.")],
    ) -> Cluster:
        with info.context.outcome.report():
            state = input.to_state()
            context = info.context
            record, nodes = await reports.report_cluster(
                context.engine,
                state,
                context.principal,
                context.clock(),
                context.controller_max_clusters,
            )
        await info.context.snapshot.restart()  # what the answer reads next sees this report
        # The answer's `nodes` are the ones this transaction committed (with the counts beside
        # them), not a later snapshot's: a 5,000-node cluster is not read a second time.
        info.context.loaders.nodes_by_cluster_id.prime(NodesKey(record.id, None, None), nodes)
        return Cluster.from_record(record)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description=(
            "Remove a cluster (Admin): it disappears from every list and lookup and its nodes "
            "are deleted; its id is never reused. False if no live cluster has this id."
        ),
    )
    async def remove_cluster(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The cluster id.")],
    ) -> bool:
        cluster_id = parse_cluster_id(id)
        if cluster_id is None:
            return False
        removed = await removal.remove(info.context.engine, cluster_id, info.context.clock())
        await info.context.snapshot.restart()
        return removed
