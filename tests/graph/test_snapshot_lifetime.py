"""An operation gives back its database connection when it is answered, whatever failed in it."""

from __future__ import annotations

import asyncio

from graph.schema import schema
from models.engine import checked_out
from tests.graph.awkward_fleet import Seeded

# `nodes` asks the DataLoader for the page's nodes; `regions` then fails on the second cluster
# and its null reaches the root before the loader's batch has run.
NODES_THEN_SPOILT_REGIONS = """
query Page($ids: [ID!]) { clusters(filter: {ids: $ids}) { clusters { nodes { name } regions } } }
"""


async def test_no_connection_stays_checked_out_when_a_null_reaches_the_root(
    seeded: Seeded,
) -> None:
    # given: a page whose second cluster has a null in its regions (written with SQL)
    ids = [seeded.fleet.id("alpha"), seeded.fleet.id("null-in-regions")]
    context = seeded.context()
    # when
    result = await schema.execute(
        NODES_THEN_SPOILT_REGIONS, variable_values={"ids": ids}, context_value=context
    )
    # then: the answer is null, and no connection is left checked out once work settles
    assert result.data is None
    for _ in range(10):
        await asyncio.sleep(0.05)
        if checked_out(seeded.engine):
            break
    try:
        assert checked_out(seeded.engine) == 0
    finally:
        await context.snapshot.close()  # give the leaked connection back before teardown
