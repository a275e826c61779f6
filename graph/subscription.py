"""Live updates (SPEC §11): `clusterChanges`, served over graphql-transport-ws at `/graphql`.

Each event is read after its change committed, from a snapshot of its own: the cluster as
stored then, with its nodes through the operation's loaders (fresh for each event, so that the
nodes agree with the counts). The snapshot is let go as soon as the event is sent, so an idle
subscription holds no database connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from graph.context import Context, Info
from graph.enums import ChangeKind
from graph.filters import ClusterFilterInput
from graph.loaders import Loaders
from graph.permissions import IsAdmin
from graph.types import Cluster
from models.changes import Change
from models.clusters import get_live
from models.errors import InvalidInput
from models.listing import ClusterFilter


@strawberry.type(description="One change of one cluster, sent once it has committed.")
class ClusterChange:
    kind: ChangeKind = strawberry.field(description="What happened.")
    cluster_id: strawberry.ID = strawberry.field(description="The cluster's id.")
    cluster: Cluster | None = strawberry.field(
        description="The cluster as stored after the change; null when REMOVED."
    )


async def _event(context: Context, change: Change) -> ClusterChange | None:
    """The event of `change`, read now; None when its cluster is no longer live (its removal
    follows as an event of its own)."""
    cluster_id = strawberry.ID(str(change.cluster_id))
    if change.kind is ChangeKind.REMOVED:
        return ClusterChange(kind=change.kind, cluster_id=cluster_id, cluster=None)
    context.loaders = Loaders(context.snapshot)
    context.now = context.clock()  # each event is an answer of its own: `stale` judged now
    record = await context.snapshot.run(lambda conn: get_live(conn, change.cluster_id))
    if record is None:
        return None
    return ClusterChange(
        kind=change.kind, cluster_id=cluster_id, cluster=Cluster.from_record(record)
    )


@strawberry.type(description="Live updates, over the graphql-transport-ws protocol at /graphql.")
class Subscription:
    @strawberry.subscription(
        permission_classes=[IsAdmin],
        description=(
            "Every change of a cluster matching `filter`, as it commits, in every process: "
            "REGISTERED, UPDATED, REMOVED, STALE. A removal matches on what the removed cluster "
            "kept (its node health is gone). After a disconnection, subscribe again, then "
            "reconcile with one `clusters` query: changes made meanwhile are not replayed."
        ),
    )
    async def cluster_changes(
        self,
        info: Info,
        filter: Annotated[
            ClusterFilterInput | None,
            strawberry.argument(description="Only clusters matching every condition given."),
        ] = None,
    ) -> AsyncGenerator[ClusterChange, None]:
        where = filter.to_domain(info.context.stale_before) if filter else ClusterFilter()
        context = info.context
        listening = context.listening
        if listening is None:
            raise InvalidInput("subscriptions run over a websocket at /graphql")
        subscriber = listening.fanout.subscribe(where, listening.on_end)
        try:
            while (change := await subscriber.next()) is not None:
                event = await _event(context, change)
                if event is not None:
                    yield event
                await context.snapshot.restart()  # sent: hold no connection while idle
        finally:
            listening.fanout.unsubscribe(subscriber)
            await context.snapshot.close()
