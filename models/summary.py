"""The fleet in numbers (SPEC §11 `fleetSummary`): clusters and nodes counted by what a
dashboard's header shows, all read in the caller's transaction (one snapshot, so the parts add
up to the wholes).

Without a filter, or with one of providers and controller statuses only, the counts come from
the summary rows (`models.fleet_counts`, one cell per provider and status), kept in the same
transactions as the rows they count: counting a million clusters on demand is a scan of every
row. Staleness moves with the clock, so it is always counted, on the last report's index, from
whichever side of the cutoff is smaller. With any other filter, everything is counted on demand
from the matching clusters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models import fleet_counts, listing
from models.fleet_counts import Kind
from models.listing import ClusterFilter
from models.tables import clusters, nodes

# Counting stale clusters stops this far into either side of the cutoff, then the other side is
# counted (the smaller one: a healthy fleet has few stale clusters, a dead one few fresh).
_PROBE = 10_000


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """Counts by key, each with its count > 0; `sensor_versions` most common first."""

    clusters: int
    stale_clusters: int
    clusters_by_provider: dict[str, int]
    clusters_by_controller_status: dict[str, int]
    nodes: int
    nodes_by_status: dict[str, int]
    nodes_with_sensor: int
    nodes_without_sensor: int
    sensor_versions: list[tuple[str, int]]


def _ranked(versions: Counter[str]) -> list[tuple[str, int]]:
    return sorted(((k, n) for k, n in versions.items() if n > 0), key=lambda kn: (-kn[1], kn[0]))


def _positive(counts: Counter[str]) -> dict[str, int]:
    return {k: n for k, n in sorted(counts.items()) if n > 0}


async def summary(
    conn: AsyncConnection, where: ClusterFilter, stale_before: datetime
) -> FleetCounts:
    """The counts of the live clusters matching `where` and of their nodes."""
    if replace(where, providers=None, controller_statuses=None).is_empty:
        return await _from_summary_rows(conn, where, stale_before)
    return await counted(conn, where, stale_before)


async def _from_summary_rows(
    conn: AsyncConnection, where: ClusterFilter, stale_before: datetime
) -> FleetCounts:
    totals = await fleet_counts.read(conn, where.providers, where.controller_statuses)
    by_kind = totals.by_kind
    node_statuses = by_kind[Kind.NODE_STATUS]
    sensors = by_kind[Kind.SENSOR]
    total = sum(totals.by_provider.values())
    return FleetCounts(
        clusters=total,
        stale_clusters=await _stale(conn, where, stale_before, total),
        clusters_by_provider=_positive(totals.by_provider),
        clusters_by_controller_status=_positive(totals.by_controller_status),
        nodes=sum(node_statuses.values()),
        nodes_by_status=_positive(node_statuses),
        nodes_with_sensor=sensors["with"],
        nodes_without_sensor=sensors["without"],
        sensor_versions=_ranked(by_kind[Kind.SENSOR_VERSION]),
    )


async def _stale(
    conn: AsyncConnection, where: ClusterFilter, stale_before: datetime, total: int
) -> int:
    """Live clusters matching `where` last heard from before `stale_before`, of `total` such
    ones, counted on the last report's index: each side of the cutoff is probed up to `_PROBE`
    clusters (a healthy fleet has few stale ones, a dead one few fresh); when both hold more,
    the stale side is counted whole."""
    for stale in (True, False):
        side = replace(where, stale=stale, stale_before=stale_before)
        on_index = listing.conditions(conn, side, on_staleness=True)
        probe = select(clusters.c.id).where(*on_index).limit(_PROBE + 1)
        counted = (
            await conn.execute(select(func.count()).select_from(probe.subquery()))
        ).scalar_one()
        if counted <= _PROBE:
            return counted if stale else total - counted
    return await listing.count_matching(conn, replace(where, stale=True, stale_before=stale_before))


async def counted(
    conn: AsyncConnection, where: ClusterFilter, stale_before: datetime
) -> FleetCounts:
    """The counts from the cluster and node rows themselves (with a filter; and for the tests
    that check the summary rows never drift from them)."""
    conditions = listing.conditions(conn, where)
    c = clusters.c
    stale = func.sum((c.controller_last_updated < stale_before).cast(clusters.c.nodes_count.type))
    by_cluster = select(c.provider, c.controller_status, func.count(), stale).where(*conditions)
    providers: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    stale_count = 0
    for provider, status, count, stale_in in await conn.execute(
        by_cluster.group_by(c.provider, c.controller_status)
    ):
        providers[provider] += count
        statuses[status] += count
        stale_count += int(stale_in or 0)
    n = nodes.c
    of_matching = select(c.id).where(*conditions)
    by_node = (
        select(n.status, n.sensor_installed, n.sensor_version, func.count())
        .where(n.cluster_id.in_(of_matching))
        .group_by(n.status, n.sensor_installed, n.sensor_version)
    )
    node_statuses: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    sensors: Counter[str] = Counter()
    for status, installed, version, count in await conn.execute(by_node):
        node_statuses[status] += count
        sensors["with" if installed else "without"] += count
        if installed:
            versions[version] += count
    return FleetCounts(
        clusters=sum(providers.values()),
        stale_clusters=stale_count,
        clusters_by_provider=_positive(providers),
        clusters_by_controller_status=_positive(statuses),
        nodes=sum(node_statuses.values()),
        nodes_by_status=_positive(node_statuses),
        nodes_with_sensor=sensors["with"],
        nodes_without_sensor=sensors["without"],
        sensor_versions=_ranked(versions),
    )
