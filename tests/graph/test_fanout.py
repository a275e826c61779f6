"""The fan-out of committed changes, on the test's real database: which filters a change
matches (the listing's own conditions), STALE once a cluster's last report grows too old, and
a full queue ending its subscriber without anyone waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from graph.fanout import Ending, Fanout, Subscriber
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
            offered = await asyncio.wait_for(reader.next(), 2)
            assert offered is not None
            assert offered.change == Change(ChangeKind.UPDATED, cluster_id)
        await asyncio.sleep(0.1)
        assert ended == [Ending.TOO_SLOW]
        assert await slow.next() is None  # its reader learns it is over
    finally:
        running.cancel()


async def _received(subscriber: Subscriber) -> list[Change]:
    """What `subscriber` has been offered so far."""
    received: list[Change] = []
    while True:
        try:
            change = await asyncio.wait_for(subscriber.next(), 0.2)
        except TimeoutError:
            return received
        assert change is not None, subscriber.ended
        received.append(change.change)


async def test_the_row_is_read_once_for_every_subscriber_of_a_change(
    engine: AsyncEngine,
) -> None:
    (cluster_id,) = await factories.insert(engine, [factories.cluster("shared")])
    fanout = Fanout(engine, queue_size=10)
    subscribers = [fanout.subscribe(ClusterFilter()) for _ in range(3)]
    running = asyncio.create_task(fanout.run())
    try:
        fanout.changed(Change(ChangeKind.UPDATED, cluster_id))
        offered = [await asyncio.wait_for(s.next(), 2) for s in subscribers]
    finally:
        running.cancel()
    first, *others = offered
    assert first is not None
    assert all(o is first for o in others)
    records = await asyncio.gather(*(first.record() for _ in range(3)))
    assert records[0] is not None
    assert records[0].name == "shared"
    assert all(r is records[0] for r in records)  # read once
    await factories.remove(engine, cluster_id)
    assert await first.record() is records[0]  # as read then, not again


async def test_ids_are_matched_in_the_process_and_the_rest_by_the_database(
    engine: AsyncEngine,
) -> None:
    aws, gcp = await factories.insert(
        engine, [factories.cluster("a-one"), factories.cluster("b-two", provider="gcp")]
    )
    filters = [
        ClusterFilter(ids=(aws,)),
        ClusterFilter(ids=(aws, gcp), providers=("gcp",)),
        ClusterFilter(ids=(gcp,), providers=("aws",)),
        ClusterFilter(providers=("aws",)),
        ClusterFilter(),
    ]
    changes = [Change(ChangeKind.UPDATED, c) for c in (aws, gcp, aws)]  # one cluster twice
    async with read_transaction(engine) as conn:
        expected = await matching(conn, changes, filters)  # the database's own answer
    fanout = Fanout(engine, queue_size=10)
    subscribers = [fanout.subscribe(where) for where in filters]
    running = asyncio.create_task(fanout.run())
    try:
        for change in changes:
            fanout.changed(change)
        received = [await _received(subscriber) for subscriber in subscribers]
    finally:
        running.cancel()
    assert received == [
        [change for change, row in zip(changes, expected, strict=True) if row[f]]
        for f in range(len(filters))
    ]
    assert received[1] == [Change(ChangeKind.UPDATED, gcp)]
    assert received[2] == []


async def test_filters_of_ids_alone_need_no_statement(tmp_path: Path) -> None:
    # given: a database that cannot be opened: any statement would end the subscriptions
    unreachable = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'absent' / 'db'}")
    fanout = Fanout(unreachable, queue_size=10)
    watching = fanout.subscribe(ClusterFilter(ids=(7,)))
    everything = fanout.subscribe(ClusterFilter())
    running = asyncio.create_task(fanout.run())
    try:
        for cluster_id in (7, 8, 7):
            fanout.changed(Change(ChangeKind.UPDATED, cluster_id))
        assert await _received(watching) == [Change(ChangeKind.UPDATED, 7)] * 2
        assert len(await _received(everything)) == 3
    finally:
        running.cancel()
        await unreachable.dispose()
