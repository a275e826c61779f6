"""One response is one snapshot: counts and nodes agree while controllers rewrite the nodes."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.settings import Settings
from models.engine import write_transaction
from models.records import NodeStatus
from models.reports import apply_report
from models.tokens import Permission, Principal
from tests import factories
from tests.databases import migrated_database_url

URL = "/runtime/api/v1/clusters"
WRITER = Principal(token_id=0, name="writer", permissions=frozenset({Permission.ADMIN}))


@pytest.fixture
async def settings(tmp_path: Path) -> Settings:
    """600 requests in a few seconds from one token: not throttled, that is not the point here."""
    return Settings(database_url=await migrated_database_url(tmp_path), rate_limit_admin=0)


def _check(cluster: dict[str, object]) -> None:
    nodes = cluster["nodes"]
    assert isinstance(nodes, list)
    statuses = [n["status"] for n in nodes]
    assert cluster["nodes_count"] == len(nodes)
    assert cluster["running_nodes_count"] == sum(
        s in ("monitored", "monitored_with_sensor") for s in statuses
    )
    assert cluster["failed_nodes_count"] == statuses.count("failed")
    assert cluster["failed_to_install_nodes_count"] == statuses.count("installation_failed")
    assert cluster["disabled_nodes_count"] == statuses.count("disabled")


async def test_every_response_is_consistent_while_nodes_are_rewritten(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    names = [f"busy-{i}" for i in range(3)]
    await factories.insert(engine, [factories.cluster(name, node_count=10) for name in names])
    rng = random.Random(3)
    stop = asyncio.Event()
    writes = 0

    async def writer() -> None:
        nonlocal writes
        while not stop.is_set():
            statuses = rng.sample(list(NodeStatus), k=rng.randint(1, 5))
            state = factories.cluster(
                rng.choice(names),
                node_states=factories.nodes(
                    rng.randint(0, 60), prefix=f"n{rng.randint(0, 3)}", statuses=statuses
                ),
            )
            async with write_transaction(engine) as conn:
                await apply_report(conn, state, WRITER, datetime.now(UTC))
            writes += 1
            await asyncio.sleep(0)

    async def reader(reads: int) -> list[int]:
        seen = []
        for _ in range(reads):
            for body in ({"return_nodes": True}, {"return_nodes": True, "limit": 1}):
                page = (await admin.post(URL, json=body)).json()
                assert page["total_count"] == 3
                for cluster in page["clusters"]:
                    _check(cluster)
                    seen.append(cluster["nodes_count"])
            for name_index in range(1, 4):
                single = (await admin.get(f"/runtime/api/v1/cluster/{name_index}")).json()[
                    "cluster"
                ]
                _check(single)
        return seen

    writing = asyncio.create_task(writer())
    seen = await asyncio.gather(*(reader(40) for _ in range(3)))
    stop.set()
    await writing
    assert writes > 20  # the writer really interleaved with the readers
    assert len({count for counts in seen for count in counts}) > 5  # and readers saw it change
