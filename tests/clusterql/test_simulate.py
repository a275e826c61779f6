"""The controller simulator against a real server."""

from __future__ import annotations

from pathlib import Path

import httpx

from clusterql import simulate
from models.engine import create_engine, create_schema
from models.records import Permission
from tests import factories
from tests.live_server import live_server


async def test_simulated_controllers_register_and_keep_updating_their_clusters(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/sim.db"
    engine = create_engine(url)
    await create_schema(engine)
    controller = await factories.token(engine, Permission.CONTROLLER)
    admin = await factories.token(engine, Permission.ADMIN)
    await engine.dispose()

    with live_server({"CLUSTERQL_DATABASE_URL": url}) as base_url:
        stats = await simulate.run(
            base_url, controller, controllers=4, interval=0.1, duration=1.5, seed=1
        )
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {admin}"}
        ) as c:
            page = (await c.post("/runtime/api/v1/clusters", json={"return_nodes": True})).json()

    assert stats.errors == []
    assert stats.acknowledged >= 4 * 5  # every controller reported again and again
    assert sorted(c["name"] for c in page["clusters"]) == [
        "sim-000",
        "sim-001",
        "sim-002",
        "sim-003",
    ]
    for cluster in page["clusters"]:
        assert cluster["nodes_count"] == len(cluster["nodes"]) > 0
        assert (
            cluster["controller_last_updated"] > cluster["monitored_at"]
        )  # updated after registering
