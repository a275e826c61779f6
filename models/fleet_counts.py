"""Summary rows: per cell of provider and controller status, how many live clusters it holds,
and how many of their nodes have each status, sensor presence and sensor version
(`fleetSummary` without a filter, or filtered by providers and controller statuses only: the
cells matching are added up).

Every write that changes what they count adds its difference in its own transaction (reports,
removals, bulk inserts), so a reader's snapshot sees them agree with the rows. A report's
difference is the cluster as reported minus the cluster as it was (read first, in the same
write transaction): a cluster whose provider or status changes moves its counts from one cell
to another. Rows are upserted in key order, so that concurrent writers on PostgreSQL lock them
in one order and never deadlock; a steady report (no change in what is counted) writes none.
Counts that fall to 0 stay as rows and are not shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from models.records import ClusterState
from models.tables import clusters, fleet_counts, nodes


class Kind(StrEnum):
    CLUSTERS = "clusters"  # live clusters in the cell (key "")
    NODE_STATUS = "node_status"  # nodes by status
    SENSOR = "sensor"  # nodes "with" or "without" a sensor
    SENSOR_VERSION = "sensor_version"  # nodes with a sensor, by its version


# (provider, controller status, kind, key): a count's place
Delta = Counter[tuple[str, str, str, str]]

_CLUSTER = select(clusters.c.provider, clusters.c.controller_status).where(
    clusters.c.id == bindparam("id")
)
_NODES = (
    select(nodes.c.status, nodes.c.sensor_installed, nodes.c.sensor_version, func.count())
    .where(nodes.c.cluster_id == bindparam("id"))
    .group_by(nodes.c.status, nodes.c.sensor_installed, nodes.c.sensor_version)
)


def _node(
    delta: Delta, cell: tuple[str, str], status: str, installed: bool, version: str, count: int
) -> None:
    delta[(*cell, Kind.NODE_STATUS, status)] += count
    delta[(*cell, Kind.SENSOR, "with" if installed else "without")] += count
    if installed:
        delta[(*cell, Kind.SENSOR_VERSION, version)] += count


def of_states(states: Iterable[ClusterState]) -> Delta:
    """What clusters in these states add to the counts."""
    delta: Delta = Counter()
    for state in states:
        cell = (state.provider, str(state.controller_status))
        delta[(*cell, Kind.CLUSTERS, "")] += 1
        for n in state.nodes:
            _node(delta, cell, str(n.status), n.sensor_installed, n.sensor_version, 1)
    return delta


async def of_cluster(conn: AsyncConnection, cluster_id: int) -> Delta:
    """What the stored cluster `cluster_id` and its nodes add to the counts now."""
    delta: Delta = Counter()
    row = (await conn.execute(_CLUSTER, {"id": cluster_id})).one()
    cell = (row.provider, row.controller_status)
    delta[(*cell, Kind.CLUSTERS, "")] += 1
    for status, installed, version, count in await conn.execute(_NODES, {"id": cluster_id}):
        _node(delta, cell, status, bool(installed), version, count)
    return delta


def difference(after: Delta, before: Delta) -> Delta:
    """`after - before`, keeping negative counts (Counter's `-` drops them)."""
    delta: Delta = Counter(after)
    delta.subtract(before)
    return delta


async def add(conn: AsyncConnection, delta: Mapping[tuple[str, str, str, str], int]) -> None:
    """Add `delta` to the summary rows, in the caller's write transaction."""
    rows = [
        {"provider": p, "controller_status": c, "kind": k, "key": key, "count": n}
        for (p, c, k, key), n in sorted(delta.items())
        if n
    ]
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(fleet_counts).values(rows)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[
                fleet_counts.c.provider,
                fleet_counts.c.controller_status,
                fleet_counts.c.kind,
                fleet_counts.c.key,
            ],
            set_={"count": fleet_counts.c.count + statement.excluded.count},
        )
    )


@dataclass(slots=True)
class Totals:
    """The summary rows of some cells, added up."""

    by_provider: Counter[str] = field(default_factory=Counter)  # clusters
    by_controller_status: Counter[str] = field(default_factory=Counter)  # clusters
    # nodes, by the node kinds (the clusters are counted by the two above)
    by_kind: dict[Kind, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in Kind})


async def read(
    conn: AsyncConnection,
    providers: Collection[str] | None = None,
    controller_statuses: Collection[str] | None = None,
) -> Totals:
    """The summary rows of the cells of these providers and statuses (None: any), added up."""
    c = fleet_counts.c
    query = select(c.provider, c.controller_status, c.kind, c.key, c.count)
    if providers is not None:
        query = query.where(c.provider.in_(list(providers)))
    if controller_statuses is not None:
        query = query.where(c.controller_status.in_(list(controller_statuses)))
    totals = Totals()
    for provider, status, kind, key, count in await conn.execute(query):
        if kind == Kind.CLUSTERS:
            totals.by_provider[provider] += count
            totals.by_controller_status[status] += count
        elif kind in totals.by_kind:
            totals.by_kind[Kind(kind)][key] += count
    return totals


# The counts from the rows themselves: for the migration that fills the summary rows, and for
# `rebuild` after a bulk copy.
REBUILD_SQL = """
INSERT INTO fleet_counts (provider, controller_status, kind, key, count)
SELECT provider, controller_status, 'clusters', '', count(*) FROM clusters
  WHERE removed_at IS NULL GROUP BY provider, controller_status
UNION ALL
SELECT c.provider, c.controller_status, 'node_status', n.status, count(*)
  FROM nodes n JOIN clusters c ON c.id = n.cluster_id WHERE c.removed_at IS NULL
  GROUP BY c.provider, c.controller_status, n.status
UNION ALL
SELECT c.provider, c.controller_status, 'sensor',
  CASE WHEN n.sensor_installed THEN 'with' ELSE 'without' END, count(*)
  FROM nodes n JOIN clusters c ON c.id = n.cluster_id WHERE c.removed_at IS NULL
  GROUP BY c.provider, c.controller_status, n.sensor_installed
UNION ALL
SELECT c.provider, c.controller_status, 'sensor_version', n.sensor_version, count(*)
  FROM nodes n JOIN clusters c ON c.id = n.cluster_id
  WHERE c.removed_at IS NULL AND n.sensor_installed
  GROUP BY c.provider, c.controller_status, n.sensor_version
"""


async def rebuild(conn: AsyncConnection) -> None:
    """Count the summary rows afresh from the rows (after a bulk copy of the rows)."""
    await conn.execute(delete(fleet_counts))
    await conn.execute(text(REBUILD_SQL))
