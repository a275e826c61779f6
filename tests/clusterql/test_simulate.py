"""The controller simulator against a real server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from clusterql import simulate
from models.engine import create_engine
from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_url
from tests.live_server import live_server


async def test_simulated_controllers_register_and_keep_updating_their_clusters(
    tmp_path: Path,
) -> None:
    url = await migrated_database_url(tmp_path)
    admin, controller = await factories.admin_and_controller(url)

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


async def test_silent_controllers_report_once_and_their_clusters_go_stale(
    tmp_path: Path,
) -> None:
    url = await migrated_database_url(tmp_path)
    admin, controller = await factories.admin_and_controller(url)
    env = {"CLUSTERQL_DATABASE_URL": url, "CLUSTERQL_STALE_AFTER": "3"}
    with live_server(env) as base_url:
        stats = await simulate.run(
            base_url, controller, controllers=3, interval=0.2, duration=6, seed=2, silent=1
        )
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {admin}"}
        ) as c:
            stale = await c.post("/runtime/api/v1/clusters", json={"filters": {"stale": True}})
            fresh = await c.post("/runtime/api/v1/clusters", json={"filters": {"stale": False}})

    assert stats.errors == []
    assert [c["name"] for c in stale.json()["clusters"]] == ["sim-000"]
    assert sorted(c["name"] for c in fresh.json()["clusters"]) == ["sim-001", "sim-002"]


async def _database_with_controller(tmp_path: Path) -> tuple[str, str]:
    url = await migrated_database_url(tmp_path)
    engine = create_engine(url)
    controller = await factories.token(engine, Permission.CONTROLLER)
    await engine.dispose()
    return url, controller


def test_the_simulate_command_reports_until_its_duration_ends(tmp_path: Path) -> None:
    url, controller = asyncio.run(_database_with_controller(tmp_path))
    with live_server({"CLUSTERQL_DATABASE_URL": url}) as base_url:
        command = [
            sys.executable,
            "-m",
            "clusterql.cli",
            "simulate",
            "--url",
            base_url,
            "--token",
            controller,
        ]
        done = subprocess.run(
            [*command, "--controllers", "2", "--interval", "0.2", "--duration", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        refused = subprocess.run(
            [
                *command[:-1],
                "cql_" + "x" * 43,
                "--controllers",
                "1",
                "--interval",
                "0.2",
                "--duration",
                "0.5",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "refused 0, failed 0" in done.stdout
    assert refused.returncode == 1  # an unknown token: every report refused, and it says so
    assert "401" in refused.stderr
