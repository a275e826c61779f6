"""DataLoaders, made per request by the context factory (never shared between requests)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from strawberry.dataloader import DataLoader

from models.clusters import live_by_id, nodes_of
from models.records import ClusterRecord, NodeRecord
from models.snapshot import Snapshot


class NodesKey(NamedTuple):
    """Which nodes of which cluster: the arguments of `Cluster.nodes` are part of the key."""

    cluster_id: int
    statuses: tuple[str, ...] | None
    first: int | None


def _nodes_by_cluster_id(snapshot: Snapshot) -> DataLoader[NodesKey, Sequence[NodeRecord]]:
    async def load(keys: Sequence[NodesKey]) -> list[Sequence[NodeRecord]]:
        # One statement per distinct (statuses, first): one for a whole page in practice.
        groups: dict[tuple[tuple[str, ...] | None, int | None], set[int]] = defaultdict(set)
        for key in keys:
            groups[key.statuses, key.first].add(key.cluster_id)
        found: dict[NodesKey, Sequence[NodeRecord]] = {}
        for (statuses, first), ids in groups.items():
            by_cluster = await snapshot.run(
                partial(nodes_of, cluster_ids=ids, statuses=statuses, first=first)
            )
            for cluster_id in ids:
                found[NodesKey(cluster_id, statuses, first)] = by_cluster.get(cluster_id, [])
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)


def _cluster_by_id(snapshot: Snapshot) -> DataLoader[int, ClusterRecord | None]:
    async def load(keys: Sequence[int]) -> list[ClusterRecord | None]:
        found = await snapshot.run(partial(live_by_id, cluster_ids=set(keys)))
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)


@dataclass(slots=True)
class Loaders:
    """The request's loaders, named by what they return and by what."""

    snapshot: Snapshot
    nodes_by_cluster_id: DataLoader[NodesKey, Sequence[NodeRecord]] = field(init=False)
    cluster_by_id: DataLoader[int, ClusterRecord | None] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes_by_cluster_id = _nodes_by_cluster_id(self.snapshot)
        self.cluster_by_id = _cluster_by_id(self.snapshot)
