"""The plausible fleet's demo: the same realistic clusters every time (`serve --demo`)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.fleet import DEMO_SIZE, controller_token_name, demo_fleet, load_demo
from models import tokens
from models.engine import read_transaction
from models.records import NodeCounts
from models.tables import api_tokens, clusters
from tests.factories import live_clusters


def test_the_demo_fleet_is_deterministic() -> None:
    now = datetime.now(UTC)

    assert demo_fleet(now) == demo_fleet(now)


async def test_the_demo_fleet_is_dozens_of_realistic_clusters(engine: AsyncEngine) -> None:
    added = await load_demo(engine, datetime.now(UTC))

    records, node_rows = await live_clusters(engine)
    assert added == len(records) == DEMO_SIZE
    assert 40 <= DEMO_SIZE <= 60
    assert {r.provider for r in records} == {"aws", "gcp", "azure", "kubernetes", "openshift"}
    assert {r.controller_status for r in records} == {"running", "stopped"}
    assert any(r.nodes_count == 0 for r in records)
    assert max(r.nodes_count for r in records) <= 40
    assert all(node_rows[r.id] == r.nodes_count for r in records)
    for count in ("running", "failed", "failed_to_install", "disabled"):
        assert any(getattr(r, f"{count}_nodes_count") > 0 for r in records), count


def test_demo_node_names_are_unique_per_cluster_and_states_add_up() -> None:
    for cluster in demo_fleet(datetime.now(UTC)):
        assert len({n.name for n in cluster.nodes}) == len(cluster.nodes)
        counts = NodeCounts.of([n.status for n in cluster.nodes])
        assert counts.running + counts.failed + counts.failed_to_install + counts.disabled == (
            counts.nodes
        )
        assert all(n.sensor_version == "" for n in cluster.nodes if not n.sensor_installed)


async def test_loading_the_demo_again_adds_nothing(engine: AsyncEngine) -> None:
    await load_demo(engine, datetime.now(UTC))

    assert await load_demo(engine, datetime.now(UTC)) == 0
    records, _ = await live_clusters(engine)
    assert len(records) == DEMO_SIZE


async def test_each_demo_cluster_is_held_by_a_controller_token_bound_to_its_name(
    engine: AsyncEngine,
) -> None:
    # When the demo fills the database
    await load_demo(engine, datetime.now(UTC))

    # Then every cluster has a Controller token of its own, bound to exactly its name
    async with read_transaction(engine) as conn:
        listed = {t.name: t for t in await tokens.list_all(conn)}
        query = select(clusters.c.name, api_tokens.c.name).join(api_tokens)
        holders: dict[str, str] = {row[0]: row[1] for row in await conn.execute(query)}
    records, _ = await live_clusters(engine)
    assert len(listed) == len(records) == DEMO_SIZE
    for record in records:
        token = listed[controller_token_name(record.name)]
        assert token.permissions == ["Controller"]
        assert token.binding == [record.name]
        assert holders[record.name] == token.name
