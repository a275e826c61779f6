"""DataLoaders, made per request by the context factory (never shared between requests)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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


class Loaders:
    """The request's loaders, named by what they return and by what. Each is made when first
    used: a page without nodes uses neither, and making both cost four Python calls of
    Strawberry's per request."""

    __slots__ = ("_cluster_by_id", "_nodes_by_cluster_id", "snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._nodes_by_cluster_id: DataLoader[NodesKey, Sequence[NodeRecord]] | None = None
        self._cluster_by_id: DataLoader[int, ClusterRecord | None] | None = None

    @property
    def nodes_by_cluster_id(self) -> DataLoader[NodesKey, Sequence[NodeRecord]]:
        if self._nodes_by_cluster_id is None:
            self._nodes_by_cluster_id = _nodes_by_cluster_id(self.snapshot)
        return self._nodes_by_cluster_id

    @property
    def cluster_by_id(self) -> DataLoader[int, ClusterRecord | None]:
        if self._cluster_by_id is None:
            self._cluster_by_id = _cluster_by_id(self.snapshot)
        return self._cluster_by_id
