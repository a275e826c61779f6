"""The fan-out of committed changes, on the test's real database: which filters a change
matches (the listing's own conditions), STALE once a cluster's last report grows too old, and
a full queue ending its subscriber without anyone waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.fanout import Ending, Fanout
from models.changes import Change, ChangeKind, matching, turned_stale
from models.engine import read_transaction, write_transaction
from models.listing import ClusterFilter
from models.records import NodeStatus
from models.tables import clusters
from tests import factories


async def test_a_change_matches_the_filters_its_cluster_matches(engine: AsyncEngine) -> None:
    healthy, failing = await factories.insert(
        engine,
        [
            factories.cluster(
                "eu-healthy", 2, node_states=factories.nodes(2, statuses=[NodeStatus.MONITORED])
            ),
            factories.cluster(
                "us-failing",
                2,
                provider="gcp",
                node_states=factories.nodes(2, statuses=[NodeStatus.FAILED]),
            ),
        ],
    )
    await factories.remove(engine, failing)
    filters = [
        ClusterFilter(),
        ClusterFilter(providers=("gcp",)),
        ClusterFilter(has_unhealthy_nodes=True),
        ClusterFilter(name="EU-"),
    ]
    changes = [
        Change(ChangeKind.UPDATED, healthy),
        Change(ChangeKind.UPDATED, failing),  # removed since: no longer matches as an update
        Change(ChangeKind.REMOVED, failing),  # its tombstone keeps its provider
    ]
    async with read_transaction(engine) as conn:
        found = await matching(conn, changes, filters)
    assert found == [
        [True, False, False, True],
        [False, False, False, False],
        [True, True, True, False],  # node health is not asked of a removed cluster
    ]


async def test_clusters_turn_stale_once_their_last_report_is_older_than_the_threshold(
    engine: AsyncEngine,
) -> None:
    old, recent = await factories.insert(engine, [factories.cluster(), factories.cluster()])
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(clusters)
            .where(clusters.c.id == old)
            .values(controller_last_updated=now - timedelta(minutes=20))
        )
    async with read_transaction(engine) as conn:
        window = await turned_stale(conn, now - timedelta(minutes=25), now - timedelta(minutes=15))
        later = await turned_stale(conn, now - timedelta(minutes=15), now - timedelta(minutes=10))
    assert window == [old]
    assert recent not in later


async def test_a_subscriber_whose_queue_is_full_is_ended_and_nobody_waits(
    engine: AsyncEngine,
) -> None:
    fanout = Fanout(engine, queue_size=2)
    ended: list[Ending] = []
    slow = fanout.subscribe(ClusterFilter(), lambda why, _detail: ended.append(why))
    reader = fanout.subscribe(ClusterFilter())
    running = asyncio.create_task(fanout.run())
    try:
        (cluster_id,) = await factories.insert(engine, [factories.cluster()])
        for _ in range(3):
            fanout.changed(Change(ChangeKind.UPDATED, cluster_id))  # returns at once
            assert await asyncio.wait_for(reader.next(), 2) == Change(
                ChangeKind.UPDATED, cluster_id
            )
        await asyncio.sleep(0.1)
        assert ended == [Ending.TOO_SLOW]
        assert await slow.next() is None  # its reader learns it is over
    finally:
        running.cancel()
