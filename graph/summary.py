"""`fleetSummary` (SPEC §11): what a dashboard's header shows, counted in the request's snapshot."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.cost import DEFAULT_SENSOR_VERSIONS
from models.errors import InvalidInput
from models.limits import MAX_SENSOR_VERSIONS
from models.listing import ClusterFilter
from models.summary import FleetCounts, summary


@strawberry.type(description="A count of clusters or nodes that share one value.")
class CountByKey:
    key: str = strawberry.field(description="The value, e.g. a provider or a node status.")
    count: int = strawberry.field(description="How many have it (always more than 0).")


def _counts(counts: dict[str, int]) -> list[CountByKey]:
    return [CountByKey(key=k, count=n) for k, n in counts.items()]


@strawberry.type(
    description=(
        "The fleet in numbers, all read from one snapshot, so the parts add up: the "
        "clusters by provider add up to `clusters`, the nodes by status to `nodes`."
    )
)
class FleetSummary:
    counts: strawberry.Private[FleetCounts]
    clusters: int = strawberry.field(description="Live clusters matching the filter.")
    stale_clusters: int = strawberry.field(
        description="Of those, the ones whose last report is older than CLUSTERQL_STALE_AFTER."
    )
    clusters_by_provider: list[CountByKey] = strawberry.field(
        description="Clusters by provider (the key), in key order."
    )
    clusters_by_controller_status: list[CountByKey] = strawberry.field(
        description='Clusters by controller status: key "running" or "stopped".'
    )
    nodes: int = strawberry.field(description="Nodes of those clusters.")
    nodes_by_status: list[CountByKey] = strawberry.field(
        description='Nodes by status: key "monitored", "failed", ... (the REST values).'
    )
    nodes_with_sensor: int = strawberry.field(description="Nodes with the sensor installed.")
    nodes_without_sensor: int = strawberry.field(description="Nodes without it.")

    @strawberry.field(
        description=(
            "Nodes with a sensor by its version (the key), most common first, ties by key."
        )
    )
    def sensor_versions(
        self,
        first: Annotated[
            int,
            strawberry.argument(
                description=f"At most this many versions, 1 to {MAX_SENSOR_VERSIONS}."
            ),
        ] = DEFAULT_SENSOR_VERSIONS,
    ) -> list[CountByKey]:
        if not 1 <= first <= MAX_SENSOR_VERSIONS:
            raise InvalidInput(
                f"sensorVersions(first:) must be between 1 and {MAX_SENSOR_VERSIONS}, got {first}"
            )
        return [CountByKey(key=k, count=n) for k, n in self.counts.sensor_versions[:first]]

    @classmethod
    def of(cls, c: FleetCounts) -> FleetSummary:
        return cls(
            counts=c,
            clusters=c.clusters,
            stale_clusters=c.stale_clusters,
            clusters_by_provider=_counts(c.clusters_by_provider),
            clusters_by_controller_status=_counts(c.clusters_by_controller_status),
            nodes=c.nodes,
            nodes_by_status=_counts(c.nodes_by_status),
            nodes_with_sensor=c.nodes_with_sensor,
            nodes_without_sensor=c.nodes_without_sensor,
        )


async def fleet_summary(info: Info, where: ClusterFilter) -> FleetSummary:
    stale_before = info.context.stale_before
    counts = await info.context.snapshot.run(lambda conn: summary(conn, where, stale_before))
    return FleetSummary.of(counts)
