"""models.copying in-process: chunks, progress, refusals (the CLI tests cover ids and sequences)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from models import migrations
from models.copying import CopyRefused, copy_database
from models.engine import read_transaction
from models.listing import ClusterFilter
from models.summary import counted
from models.summary import summary as summary_of
from models.tables import api_tokens, clusters, nodes, service_keys
from models.tokens import Permission
from tests import factories
from tests.databases import NewEngine


@pytest.fixture
async def source(new_engine: NewEngine) -> AsyncEngine:
    engine = await new_engine()
    await migrations.upgrade(engine)
    return engine


@pytest.fixture
async def target(new_engine: NewEngine) -> AsyncEngine:
    return await new_engine()


class Recorder:
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.chunks: list[tuple[str, int]] = []

    def start(self, totals: Mapping[str, int]) -> None:
        self.totals = dict(totals)

    def advance(self, table: str, rows: int) -> None:
        self.chunks.append((table, rows))


async def _everything(engine: AsyncEngine) -> list[list[tuple[object, ...]]]:
    async with read_transaction(engine) as conn:
        return [
            [tuple(row) for row in await conn.execute(select(t).order_by(*t.primary_key))]
            for t in (api_tokens, clusters, nodes, service_keys)
        ]


async def test_a_copy_in_small_chunks_is_exact_and_reports_each_chunk(
    source: AsyncEngine, target: AsyncEngine
) -> None:
    # Given 7 clusters of 3 nodes, one removed, and a token
    await factories.token(source, Permission.CONTROLLER)
    ids = await factories.insert(source, [factories.cluster(node_count=3) for _ in range(7)])
    await factories.remove(source, ids[3])
    recorder = Recorder()

    # When it is copied 4 rows per statement
    summary = await copy_database(source, target, recorder, chunk_rows=4)

    # Then the target holds the same rows, and progress saw every chunk
    assert await _everything(target) == await _everything(source)
    assert summary.rows == {"api_tokens": 1, "clusters": 7, "nodes": 18, "service_keys": 0}
    assert summary.removed_clusters == 1
    assert recorder.totals == summary.rows
    assert recorder.chunks == [
        ("api_tokens", 1),
        ("clusters", 4),
        ("clusters", 3),
        ("nodes", 4),
        ("nodes", 4),
        ("nodes", 4),
        ("nodes", 4),
        ("nodes", 2),
    ]
    # And its summary rows are counted from the rows it holds
    async with read_transaction(target) as conn:
        now = datetime.now(UTC)
        kept = await summary_of(conn, ClusterFilter(), now)
        assert kept == await counted(conn, ClusterFilter(), now)
        assert (kept.clusters, kept.nodes) == (6, 18)


async def test_an_empty_source_gives_an_empty_migrated_target(
    source: AsyncEngine, target: AsyncEngine
) -> None:
    summary = await copy_database(source, target)

    assert summary.rows == {"api_tokens": 0, "clusters": 0, "nodes": 0, "service_keys": 0}
    [new_id] = await factories.insert(target, [factories.cluster()])
    assert new_id == 1


async def test_a_database_is_not_copied_onto_itself(source: AsyncEngine) -> None:
    with pytest.raises(CopyRefused, match="same database"):
        await copy_database(source, source)
