"""Keyset pages cost the same at any depth: each seeks its position in its order's index (SQLite).

The plans are SQLite's own (`EXPLAIN QUERY PLAN`) for the very statements `models.listing` runs,
caught with a `before_cursor_execute` listener on the app's engine over a real SQLite file.
A deep page must seek straight to its position in the order's index: never read the table or a
whole index and sort it (`USE TEMP B-TREE FOR ORDER BY`), never step over the clusters that tie
with its position (a seek on the sort value alone, `(nodes_count>?)`, would). With a provider
filter and more than `FEW_BY_PROVIDER` clusters of those providers, a page walks its order's
index and tests the provider; with fewer, it reads them all through the provider index and
sorts them, which costs at most that many rows.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import listing
from models.engine import read_transaction
from models.listing import ClusterFilter, Direction, Order, OrderField, Position, SortValue
from tests import factories
from tests.databases import postgres_server_url

pytestmark = [
    pytest.mark.skipif(
        postgres_server_url() is not None,
        reason="reads SQLite's own plans (EXPLAIN QUERY PLAN): runs in the SQLite pass; "
        "PostgreSQL's plans are checked in test_listing_plans_postgres.py",
    ),
    pytest.mark.usefixtures("pages_through_sqlalchemy"),
]

# The indexes a page in each order may read. SQLite ends every index with the rowid (our id), so
# the unique index on live names is (name, id) too.
ORDER_INDEXES = {
    OrderField.ID: {"ix_clusters_live_id", "INTEGER PRIMARY KEY"},
    OrderField.NAME: {"ix_clusters_live_name_id", "ux_clusters_live_name"},
    **{
        field: {f"ix_clusters_live_{field}_id"}
        for field in (
            OrderField.MONITORED_AT,
            OrderField.CONTROLLER_LAST_UPDATED,
            OrderField.NODES_COUNT,
            OrderField.FAILED_NODES_COUNT,
        )
    },
}
# Clusters of given providers in id order: (provider, id) serves the default order best.
PROVIDER_INDEX = "ix_clusters_live_provider_id"
FILTERS = {
    "no filter": ClusterFilter(),
    "one provider": ClusterFilter(providers=("aws",)),
    "two providers": ClusterFilter(providers=("aws", "gcp")),
    "every filter": ClusterFilter(
        name="prod",
        providers=("aws", "gcp"),
        controller_statuses=("running",),
        regions=("eu-west-1", "us-east-1"),
        has_unhealthy_nodes=True,
    ),
}
NOW = datetime(2026, 11, 30, 12, 0, 0, 123_456, tzinfo=UTC)
VALUES: dict[OrderField, SortValue] = {
    OrderField.ID: 500_000,
    OrderField.NAME: "prod-payments-aws-0500000",
    OrderField.MONITORED_AT: NOW,
    OrderField.CONTROLLER_LAST_UPDATED: NOW,
    OrderField.NODES_COUNT: 2,
    OrderField.FAILED_NODES_COUNT: 0,
}
READ = re.compile(
    r"(SCAN|SEARCH) clusters"
    r"(?: USING (?:COVERING )?INDEX (\w+)| USING (INTEGER PRIMARY KEY))?"
    r"(?: \((.*)\))?"
)


Run = Callable[[AsyncConnection], Awaitable[object]]


def _page(where: ClusterFilter, order: Order, after: Position | None) -> Run:
    return lambda conn: listing.page(conn, where, order, after, 100)


def _any_from(where: ClusterFilter, order: Order, start: Position) -> Run:
    return lambda conn: listing.any_from(conn, where, order, start)


async def _plans(engine: AsyncEngine, run: Run) -> list[list[str]]:
    """SQLite's plans of the SELECTs that `run` sends, with the same parameters."""
    sent: list[tuple[str, Any]] = []

    def record(conn: object, cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if statement.startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with read_transaction(engine) as conn:
            await run(conn)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    plans = []
    async with read_transaction(engine) as conn:
        for statement, parameters in sent:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append([row.detail for row in rows])
    return plans


async def _plan(engine: AsyncEngine, run: Run) -> list[str]:
    """SQLite's plan of the last SELECT that `run` sends: the page itself."""
    return (await _plans(engine, run))[-1]


def _reads(plan: list[str], allowed: set[str]) -> list[tuple[str, str]]:
    """(SCAN or SEARCH, range) of each read of `clusters`, each checked to use an allowed index."""
    reads = []
    for line in plan:
        match = READ.fullmatch(line)
        if match is None:
            continue
        kind, index, primary_key, bounds = match.groups()
        used = index or primary_key
        assert used is not None, f"a full table scan: {plan}"
        assert used in allowed, f"{used} is not an index of this order: {plan}"
        reads.append((kind, bounds or ""))
    assert reads, plan
    return reads


def _sorts(plan: list[str]) -> bool:
    return any("TEMP B-TREE" in line for line in plan)


def _may_sort(field: OrderField, where: ClusterFilter) -> bool:
    # Id order over several providers: SQLite reads each provider's range from the position on,
    # in id order, merging them through a sorter that stops each range once the page is full;
    # a page costs (providers x limit) entries at any depth (bench/listing.py measures it).
    return field is OrderField.ID and where.providers is not None and len(where.providers) > 1


def _allowed(field: OrderField, where: ClusterFilter) -> set[str]:
    if field is OrderField.ID and where.providers is not None:
        return ORDER_INDEXES[field] | {PROVIDER_INDEX}
    return ORDER_INDEXES[field]


def _seeks(field: OrderField, direction: Direction, provider_index: bool) -> set[str]:
    """What a read positioned after (value, id) may seek: the full position, never less."""
    later = ">" if direction is Direction.ASC else "<"
    if field is OrderField.ID:
        prefix = "provider=? AND " if provider_index else ""
        return {f"{prefix}{name}{later}?" for name in ("id", "rowid")}
    # Same value and a later id, or a later value: two ranges of the order's index.
    return {f"{field}=? AND {name}{later}?" for name in ("id", "rowid")} | {f"{field}{later}?"}


@pytest.fixture
async def many_by_provider(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """More clusters of each provider filtered by than `FEW_BY_PROVIDER` (here 0)."""
    await factories.insert(engine, [factories.cluster(provider=p) for p in ("aws", "gcp", "azure")])
    monkeypatch.setattr(listing, "FEW_BY_PROVIDER", 0)


@pytest.mark.usefixtures("many_by_provider")
@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("field", list(OrderField))
async def test_every_order_seeks_its_position_in_its_own_index_with_or_without_filters(
    engine: AsyncEngine, field: OrderField, direction: Direction
) -> None:
    order = Order(field, direction)
    position = Position(value=VALUES[field], id=500_000)
    for name, where in FILTERS.items():
        allowed = _allowed(field, where)

        # Given the first page: it reads the order's index from its start, without sorting.
        first = await _plan(engine, _page(where, order, None))
        _reads(first, allowed)
        assert _sorts(first) is _may_sort(field, where), (name, first)

        # Given a page deep into the walk: it seeks the position itself, so its depth is free.
        deep = await _plan(engine, _page(where, order, position))
        reads = _reads(deep, allowed)
        assert _sorts(deep) is _may_sort(field, where), (name, deep)
        seeks = _seeks(field, direction, provider_index=any(PROVIDER_INDEX in r for r in deep))
        assert {kind for kind, _ in reads} == {"SEARCH"}, (name, deep)
        assert {bounds for _, bounds in reads} <= seeks, (name, deep)
        if field is not OrderField.ID:  # both ranges, the ties after the position and beyond
            assert len(reads) == 2, (name, deep)
            assert "MERGE (UNION ALL)" in deep, (name, deep)

        # Relay's hasPreviousPage looks back from a position: the same seeks, no sort.
        back = Order(field, direction.reversed())
        behind = await _plan(engine, _any_from(where, back, position))
        reads = _reads(behind, allowed)
        assert not _sorts(behind), (name, behind)
        seeks = _seeks(
            field, back.direction, provider_index=any(PROVIDER_INDEX in r for r in behind)
        )
        assert {bounds for _, bounds in reads} <= seeks, (name, behind)


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("field", [f for f in OrderField if f is not OrderField.ID])
async def test_a_few_clusters_of_the_providers_asked_for_are_read_by_provider_and_sorted(
    engine: AsyncEngine, field: OrderField, direction: Direction
) -> None:
    # Given no more clusters of those providers than FEW_BY_PROVIDER (here: none)
    order = Order(field, direction)
    position = Position(value=VALUES[field], id=500_000)
    later = ">" if direction is Direction.ASC else "<"
    ties = {f"{field}=? AND {name}{later}?" for name in ("id", "rowid")}
    for providers in (("aws",), ("aws", "gcp")):
        where = ClusterFilter(providers=providers)
        for run in (
            _page(where, order, None),
            _page(where, order, position),
            _any_from(where, order, position),
        ):
            # Then each page (or look behind) reads only their range of the provider index, or
            # seeks the clusters that tie with its position in the order's index
            plan = await _plan(engine, run)
            reads = _reads(plan, {PROVIDER_INDEX, *ORDER_INDEXES[field]})
            assert {kind for kind, _ in reads} == {"SEARCH"}, plan
            assert all(b.startswith("provider=?") or b in ties for _, b in reads), plan
            assert any(b.startswith("provider=?") for _, b in reads), plan


async def test_a_page_counts_the_providers_clusters_on_their_index_only(
    engine: AsyncEngine,
) -> None:
    order = Order(OrderField.NAME, Direction.ASC)
    plans = await _plans(engine, _page(ClusterFilter(providers=("aws", "gcp")), order, None))
    [probe, _page_itself] = plans
    # at most FEW_BY_PROVIDER + 1 entries of the providers' range (0.6 ms at a million clusters)
    assert _reads(probe, {PROVIDER_INDEX}) == [("SEARCH", "provider=?")], probe
    assert not _sorts(probe), probe


async def test_the_plans_are_read_from_the_statements_listing_runs(engine: AsyncEngine) -> None:
    # Guards the guard: a sort of the whole table is caught when a statement asks for one.
    order = Order(OrderField.NODES_COUNT, Direction.ASC)
    plan = await _plan(engine, _page(ClusterFilter(), order, None))
    assert plan == ["SCAN clusters USING INDEX ix_clusters_live_nodes_count_id"]

    async def unindexed(conn: AsyncConnection) -> object:
        return await conn.exec_driver_sql("SELECT id FROM clusters ORDER BY regions LIMIT 5")

    plan = await _plan(engine, unindexed)
    with pytest.raises(AssertionError, match="full table scan"):
        _reads(plan, ORDER_INDEXES[OrderField.ID])
    assert _sorts(plan)
