"""Keyset pages cost the same at any depth on PostgreSQL too: each seeks its position.

The PostgreSQL counterpart of test_listing_plans.py (which reads SQLite's plans): PostgreSQL's
own plans (`EXPLAIN (FORMAT JSON)`) for the very statements `models.listing` runs, on 20,000
analyzed clusters in a throwaway server. A deep page must be one index scan of its order's
index that starts at the full position (a row comparison `(value, id) > (...)` in the index
condition), with no sort and no sequential scan.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from models import listing
from models.engine import create_engine, read_transaction, write_transaction
from models.listing import ClusterFilter, Direction, Order, OrderField, Position, SortValue
from models.seeding import insert_clusters
from tests import factories
from tests.databases import migrated_database_on
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.usefixtures("pages_through_sqlalchemy")
CLUSTERS = 20_000
PROVIDERS = ("aws", "gcp", "azure", "kubernetes")
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
VALUES: dict[OrderField, SortValue] = {
    OrderField.ID: 5_000,
    OrderField.NAME: "cluster-05000",
    OrderField.MONITORED_AT: NOW,
    OrderField.CONTROLLER_LAST_UPDATED: NOW,
    OrderField.NODES_COUNT: 2,
    OrderField.FAILED_NODES_COUNT: 0,
}
UNIQUE_NAME = "ux_clusters_live_name"
FILTERS = {"no filter": ClusterFilter(), "one provider": ClusterFilter(providers=("aws",))}


async def _seeded(server: str) -> str:
    url = await migrated_database_on(server)
    engine = create_engine(url)
    try:
        states = [
            factories.cluster(f"cluster-{i:05}", node_count=0, provider=PROVIDERS[i % 4])
            for i in range(CLUSTERS)
        ]
        async with write_transaction(engine) as conn:
            await insert_clusters(conn, states, NOW)
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    finally:
        await engine.dispose()
    return url


@pytest.fixture(scope="module")
def database_url(postgres: PostgresServer) -> str:
    return asyncio.run(_seeded(postgres.url))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def _plans(engine: AsyncEngine, where: ClusterFilter, order: Order) -> list[Any]:
    """PostgreSQL's plan of each SELECT of a deep page, as `models.listing` runs it."""
    caught: list[tuple[str, Any]] = []

    def catch(conn: object, cursor: object, statement: str, parameters: Any, *rest: Any) -> None:
        caught.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", catch)
    try:
        position = Position(VALUES[order.field], 5_000)
        async with read_transaction(engine) as conn:
            await listing.page(conn, where, order, position, 100)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", catch)
    plans = []
    async with engine.connect() as conn:
        for statement, parameters in caught:
            if statement.lstrip().startswith("SELECT"):
                explained = await conn.exec_driver_sql(
                    f"EXPLAIN (FORMAT JSON) {statement}", parameters
                )
                plan = explained.scalar_one()
                plans.append((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return plans


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("field", list(OrderField))
async def test_a_deep_page_seeks_its_position_in_its_own_index(
    engine: AsyncEngine, field: OrderField, direction: Direction
) -> None:
    index = "ix_clusters_live_id" if field is OrderField.ID else f"ix_clusters_live_{field}_id"
    for name, where in FILTERS.items():
        [plan] = await _plans(engine, where, Order(field, direction))
        nodes = list(_nodes(plan))
        kinds = [node["Node Type"] for node in nodes]
        assert "Sort" not in kinds, (name, kinds)
        assert "Seq Scan" not in kinds, (name, kinds)
        [scan] = [node for node in nodes if node.get("Relation Name") == "clusters"]
        assert scan["Node Type"] == "Index Scan", (name, scan)
        assert scan["Scan Direction"] == ("Forward" if direction is Direction.ASC else "Backward")
        condition = scan["Index Cond"]
        if scan["Index Name"] == UNIQUE_NAME and field is OrderField.NAME:
            # Names are unique among live clusters: a seek on the name steps over one at most.
            assert condition.startswith("((name)::text "), (name, scan)
            continue
        assert scan["Index Name"] == index, (name, scan)
        if field is OrderField.ID:
            assert condition.startswith("(id "), (name, scan)
        else:  # the full position, value and id: no stepping over the clusters that tie
            seek = rf"\(ROW\(\(?{field}\)?(::\w+)?, id\) [<>] ROW\("
            assert re.match(seek, condition), (name, scan)
