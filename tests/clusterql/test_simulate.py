"""The controller simulator against a real server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select

from clusterql import simulate
from models import tokens
from models.engine import create_engine, read_transaction
from models.tables import api_tokens, clusters
from models.tokens import Permission, TokenInfo
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


def test_without_a_token_each_fake_controller_gets_one_bound_to_its_name(tmp_path: Path) -> None:
    # Given a server and its database, and no token at hand
    url = asyncio.run(migrated_database_url(tmp_path))
    with live_server({"CLUSTERQL_DATABASE_URL": url}) as base_url:
        # When the simulation runs with the database instead of a token
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "clusterql.cli",
                "simulate",
                "--url",
                base_url,
                "--database-url",
                url,
                "--controllers",
                "3",
                "--interval",
                "0.2",
                "--duration",
                "1",
                "--prefix",
                "own",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # Then every report was accepted, each cluster held by its own token bound to its name,
    # and the tokens were revoked at the end
    assert done.returncode == 0, done.stderr
    assert "refused 0, failed 0" in done.stdout
    assert "made 3 Controller tokens, each bound to its cluster's name" in done.stderr
    made, holders = asyncio.run(_tokens_and_holders(url))
    assert sorted(t.binding[0] for t in made) == ["own-000", "own-001", "own-002"]
    assert all(t.revoked_at is not None and len(t.binding) == 1 for t in made)
    assert holders == {t.binding[0]: t.name for t in made}


async def _tokens_and_holders(url: str) -> tuple[list[TokenInfo], dict[str, str]]:
    engine = create_engine(url)
    try:
        async with read_transaction(engine) as conn:
            made = await tokens.list_all(conn)
            query = select(clusters.c.name, api_tokens.c.name).join(api_tokens)
            holders = {row[0]: row[1] for row in await conn.execute(query)}
    finally:
        await engine.dispose()
    return made, holders
