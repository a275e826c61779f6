"""Summary rows: how many live clusters have each provider and controller status, and how many
nodes each status, sensor presence and sensor version (`fleetSummary` without a filter).

Every write that changes what they count adds its difference in its own transaction (reports,
removals, bulk inserts), so a reader's snapshot sees them agree with the rows. A report's
difference is the cluster as reported minus the cluster as it was (read first, in the same
write transaction). Rows are upserted in key order, so that concurrent writers on PostgreSQL
lock them in one order and never deadlock; a steady report (no change in what is counted)
writes none. Counts that fall to 0 stay as rows and are not shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from models.records import ClusterState
from models.tables import clusters, fleet_counts, nodes


class Kind(StrEnum):
    PROVIDER = "provider"  # clusters by provider
    CONTROLLER_STATUS = "controller_status"  # clusters by controller status
    NODE_STATUS = "node_status"  # nodes by status
    SENSOR = "sensor"  # nodes "with" or "without" a sensor
    SENSOR_VERSION = "sensor_version"  # nodes with a sensor, by its version


Delta = Counter[tuple[str, str]]

_CLUSTER = select(clusters.c.provider, clusters.c.controller_status).where(
    clusters.c.id == bindparam("id")
)
_NODES = (
    select(nodes.c.status, nodes.c.sensor_installed, nodes.c.sensor_version, func.count())
    .where(nodes.c.cluster_id == bindparam("id"))
    .group_by(nodes.c.status, nodes.c.sensor_installed, nodes.c.sensor_version)
)


def _node(delta: Delta, status: str, installed: bool, version: str, count: int) -> None:
    delta[Kind.NODE_STATUS, status] += count
    delta[Kind.SENSOR, "with" if installed else "without"] += count
    if installed:
        delta[Kind.SENSOR_VERSION, version] += count


def of_states(states: Iterable[ClusterState]) -> Delta:
    """What clusters in these states add to the counts."""
    delta: Delta = Counter()
    for state in states:
        delta[Kind.PROVIDER, state.provider] += 1
        delta[Kind.CONTROLLER_STATUS, str(state.controller_status)] += 1
        for n in state.nodes:
            _node(delta, str(n.status), n.sensor_installed, n.sensor_version, 1)
    return delta


async def of_cluster(conn: AsyncConnection, cluster_id: int) -> Delta:
    """What the stored cluster `cluster_id` and its nodes add to the counts now."""
    delta: Delta = Counter()
    row = (await conn.execute(_CLUSTER, {"id": cluster_id})).one()
    delta[Kind.PROVIDER, row.provider] += 1
    delta[Kind.CONTROLLER_STATUS, row.controller_status] += 1
    for status, installed, version, count in await conn.execute(_NODES, {"id": cluster_id}):
        _node(delta, status, bool(installed), version, count)
    return delta


def difference(after: Delta, before: Delta) -> Delta:
    """`after - before`, keeping negative counts (Counter's `-` drops them)."""
    delta: Delta = Counter(after)
    delta.subtract(before)
    return delta


async def add(conn: AsyncConnection, delta: Mapping[tuple[str, str], int]) -> None:
    """Add `delta` to the summary rows, in the caller's write transaction."""
    rows = [{"kind": k, "key": key, "count": n} for (k, key), n in sorted(delta.items()) if n]
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(fleet_counts).values(rows)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[fleet_counts.c.kind, fleet_counts.c.key],
            set_={"count": fleet_counts.c.count + statement.excluded.count},
        )
    )


async def read(conn: AsyncConnection) -> dict[Kind, Counter[str]]:
    """Every summary row, by kind."""
    found: dict[Kind, Counter[str]] = {kind: Counter() for kind in Kind}
    query = select(fleet_counts.c.kind, fleet_counts.c.key, fleet_counts.c.count)
    for kind, key, count in await conn.execute(query):
        if kind in found:
            found[Kind(kind)][key] += count
    return found


# The counts from the rows themselves: for the migration that fills the summary rows, and for
# the tests that check they never drift.
REBUILD_SQL = """
INSERT INTO fleet_counts (kind, key, count)
SELECT 'provider', provider, count(*) FROM clusters WHERE removed_at IS NULL GROUP BY provider
UNION ALL
SELECT 'controller_status', controller_status, count(*) FROM clusters WHERE removed_at IS NULL
  GROUP BY controller_status
UNION ALL
SELECT 'node_status', status, count(*) FROM nodes GROUP BY status
UNION ALL
SELECT 'sensor', CASE WHEN sensor_installed THEN 'with' ELSE 'without' END, count(*) FROM nodes
  GROUP BY sensor_installed
UNION ALL
SELECT 'sensor_version', sensor_version, count(*) FROM nodes WHERE sensor_installed
  GROUP BY sensor_version
"""


async def rebuild(conn: AsyncConnection) -> None:
    """Count the summary rows afresh from the rows (after a bulk copy of the rows)."""
    await conn.execute(delete(fleet_counts))
    await conn.execute(text(REBUILD_SQL))
