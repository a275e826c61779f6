"""Live updates (SPEC §11): `clusterChanges`, served over graphql-transport-ws at `/graphql`.

Each event is read after its change committed. When the operation selects no nodes, the
cluster's row is all it needs: it is read once for every subscriber of the change in this
process (`graph.fanout.Offered`). Otherwise it is read from a snapshot of its own: the cluster as
stored then, with its nodes through the operation's loaders (fresh for each event, so that the
nodes agree with the counts), let go as soon as the event is sent, so that an idle subscription
holds no database connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Annotated

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from graph.context import Context, Info
from graph.enums import ChangeKind
from graph.fanout import Offered
from graph.filters import ClusterFilterInput
from graph.loaders import Loaders
from graph.permissions import IsAdmin
from graph.types import Cluster
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


async def _event(context: Context, offered: Offered, with_nodes: bool) -> ClusterChange | None:
    """The event of a change, read now; None when its cluster is no longer live (its removal
    follows as an event of its own)."""
    change = offered.change
    cluster_id = strawberry.ID(str(change.cluster_id))
    if change.kind is ChangeKind.REMOVED:
        return ClusterChange(kind=change.kind, cluster_id=cluster_id, cluster=None)
    context.now = context.clock()  # each event is an answer of its own: `stale` judged now
    if with_nodes:
        context.loaders = Loaders(context.snapshot)
        record = await context.snapshot.run(lambda conn: get_live(conn, change.cluster_id))
    else:
        record = await offered.record()
    if record is None:
        return None
    return ClusterChange(
        kind=change.kind, cluster_id=cluster_id, cluster=Cluster.from_record(record)
    )


def _selects_nodes(selections: Sequence[Selection]) -> bool:
    """Whether `nodes` is selected anywhere in `selections` (fragments and skipped fields
    included: when in doubt, the event is read with its nodes)."""
    return any(
        (isinstance(s, SelectedField) and s.name == "nodes") or _selects_nodes(s.selections)
        for s in selections
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
        with_nodes = _selects_nodes(info.selected_fields)
        subscriber = listening.fanout.subscribe(where, listening.on_end)
        try:
            while (offered := await subscriber.next()) is not None:
                event = await _event(context, offered, with_nodes)
                if event is not None:
                    yield event
                if with_nodes:
                    await context.snapshot.restart()  # sent: hold no connection while idle
        finally:
            listening.fanout.unsubscribe(subscriber)
            await context.snapshot.close()
