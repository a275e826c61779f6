"""Keyset pages by provider: both ways of reading them give every match once, in order.

With few clusters of the providers asked for, a page reads them by provider and sorts them; with
more, it walks the order's index and tests each provider (see `models.listing`). Both must return
the same walk, and the same answer to "is anything at or after this position".
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models import listing
from models.engine import read_transaction
from models.listing import ClusterFilter, Direction, Order, OrderField, Position, position_of
from models.records import ClusterRecord
from tests import factories

FILTERS = [
    ClusterFilter(providers=("aws",)),
    ClusterFilter(providers=("azure", "gcp")),
    ClusterFilter(providers=("gcp",), name="B"),
    ClusterFilter(providers=("none-such",)),
]
BRANCHES = {"few: by provider, then sorted": 10_000, "many: along the order's index": 0}


async def _fleet(engine: AsyncEngine) -> list[ClusterRecord]:
    """40 clusters in 4 inserts (timestamps tie within one), with few distinct node counts."""
    rng = random.Random(41)
    for batch in range(4):
        await factories.insert(
            engine,
            [
                factories.cluster(
                    f"{rng.choice('aAbB')}-{batch}{i}",
                    node_count=rng.choice([0, 1, 1, 3]),
                    provider=rng.choice(["aws", "aws", "gcp", "azure"]),
                )
                for i in range(10)
            ],
        )
    async with read_transaction(engine) as conn:
        records, more = await listing.page(conn, ClusterFilter(), Order(), None, 100)
    assert not more
    return list(records)


def _expected(records: list[ClusterRecord], where: ClusterFilter, order: Order) -> list[int]:
    assert where.providers is not None
    chosen = [
        r
        for r in records
        if r.provider in where.providers
        and (where.name is None or where.name.lower() in r.name.lower())
    ]
    chosen.sort(
        key=lambda r: (getattr(r, str(order.field)), r.id),
        reverse=order.direction is Direction.DESC,
    )
    return [r.id for r in chosen]


async def _walk(engine: AsyncEngine, where: ClusterFilter, order: Order, seed: str) -> list[int]:
    rng = random.Random(seed)
    seen: list[int] = []
    after: Position | None = None
    while True:
        async with read_transaction(engine) as conn:
            records, more = await listing.page(conn, where, order, after, rng.randint(1, 7))
        seen += [r.id for r in records]
        if not more:
            return seen
        after = position_of(records[-1], order.field)


@pytest.mark.parametrize("few", BRANCHES.values(), ids=BRANCHES.keys())
@pytest.mark.parametrize("field", [f for f in OrderField if f is not OrderField.ID])
async def test_both_ways_walk_every_match_once_in_order_and_look_behind_alike(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, field: OrderField, few: int
) -> None:
    everything = await _fleet(engine)
    by_id = {r.id: r for r in everything}
    monkeypatch.setattr(listing, "FEW_BY_PROVIDER", few)
    for direction in Direction:
        order = Order(field, direction)
        for where in FILTERS:
            expected = _expected(everything, where, order)
            assert await _walk(engine, where, order, f"{field}{direction}{where}") == expected
            # Relay's look behind: is any match at `start` or after it in `order`?
            keys = [(getattr(by_id[i], str(field)), i) for i in expected]
            for record in everything[::3]:
                start = position_of(record, field)
                at = (start.value, start.id)
                want = any(k >= at if direction is Direction.ASC else k <= at for k in keys)
                async with read_transaction(engine) as conn:
                    assert await listing.any_from(conn, where, order, start) is want


FIXED = [
    ClusterFilter(),
    ClusterFilter(name="a"),
    ClusterFilter(has_unhealthy_nodes=False),
    ClusterFilter(providers=("aws", "gcp")),  # in the id order only, on SQLite
]


@pytest.mark.parametrize("field", list(OrderField))
async def test_walks_on_made_once_statements_give_every_match_once_in_order(
    engine: AsyncEngine, field: OrderField
) -> None:
    """A page whose filter's SQL is fixed reuses the statement made for its filter, order and
    limit, its position given as parameters: a walk is the same as sorting the matches."""
    everything = await _fleet(engine)
    dialect = engine.dialect.name
    for direction in Direction:
        order = Order(field, direction)
        for where in FIXED:
            if not listing._statement_is_fixed(dialect, where, order):
                continue
            listing._statement.cache_clear()
            chosen = [
                r
                for r in everything
                if (where.name is None or where.name.lower() in r.name.lower())
                and (where.providers is None or r.provider in where.providers)
                and (
                    where.has_unhealthy_nodes is None
                    or r.failed_nodes_count
                    + r.failed_to_install_nodes_count
                    + r.disabled_nodes_count
                    == 0
                )
            ]
            chosen.sort(key=lambda r: (getattr(r, str(field)), r.id), reverse=direction == "desc")
            seen: list[int] = []
            after: Position | None = None
            pages = 0
            while True:
                async with read_transaction(engine) as conn:
                    records, more = await listing.page(conn, where, order, after, 3)
                seen += [r.id for r in records]
                pages += 1
                if not more:
                    break
                after = position_of(records[-1], field)
            assert seen == [r.id for r in chosen], (where, order)
            made = listing._statement.cache_info()
            assert made.misses <= 2  # the first page's statement, and the continued pages'
            assert made.hits == pages - made.misses
