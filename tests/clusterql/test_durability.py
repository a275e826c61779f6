"""No acknowledged report is lost: concurrent writers and a SIGKILL against a real server.

The check is the one Jepsen-style tests use: each client records which of its writes the server
acknowledged; afterwards every acknowledged write is present, every refused one absent, and
nothing is duplicated. Writes whose answer never came (the server died) may go either way.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from models.engine import create_engine, read_transaction
from models.tables import clusters, nodes
from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_url
from tests.live_server import server_process

REPORT = (
    "mutation R($input: ClusterReport!) { reportCluster(input: $input) { id controllerVersion } }"
)


def report(
    name: str, version: str, node_count: int = 20, duplicate: bool = False
) -> dict[str, Any]:
    names = [f"{name}-n{i}" for i in range(node_count)] + ([f"{name}-n0"] if duplicate else [])
    return {
        "name": name,
        "provider": "kubernetes",
        "regions": ["dc-1"],
        "controllerVersion": version,
        "controllerStatus": "RUNNING",
        "nodes": [
            {"name": n, "hostname": n, "status": "MONITORED", "sensorInstalled": False}
            for n in names
        ],
    }


@pytest.fixture
async def database(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A database with the schema, an Admin and a Controller token; the tokens by role."""
    url = await migrated_database_url(tmp_path)
    engine: AsyncEngine = create_engine(url)
    secrets = {
        "admin": await factories.token(engine, Permission.ADMIN),
        "controller": await factories.token(engine, Permission.CONTROLLER),
    }
    await engine.dispose()
    return url, secrets


async def _send(client: httpx.AsyncClient, state: dict[str, Any]) -> bool:
    """True if acknowledged, False if refused; raises if the answer never came."""
    response = await client.post("/graphql", json={"query": REPORT, "variables": {"input": state}})
    payload = response.json()
    if response.status_code == 200 and not payload.get("errors"):
        assert payload["data"]["reportCluster"]["controllerVersion"] == state["controllerVersion"]
        return True
    return False


async def _stored(base_url: str, admin_secret: str) -> dict[str, list[str]]:
    """Every live cluster's controller version, by name (a list, to catch duplicates)."""
    found: dict[str, list[str]] = {}
    body: dict[str, Any] = {"limit": 100}
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {admin_secret}"}
    ) as c:
        while True:
            page = (await c.post("/runtime/api/v1/clusters", json=body)).json()
            for cluster in page["clusters"]:
                found.setdefault(cluster["name"], []).append(cluster["controller_version"])
            if "next_key" not in page["pagination"]:
                return found
            body["next_key"] = page["pagination"]["next_key"]


async def test_concurrent_writers_lose_nothing_they_were_told_was_stored(
    database: tuple[str, dict[str, str]],
) -> None:
    url, secrets = database
    writers, reports_each = 8, 12
    acked: dict[str, str] = {}  # cluster name -> last acknowledged version
    refused: set[str] = set()

    async def writer(w: int, client: httpx.AsyncClient) -> None:
        for j in range(reports_each):
            own = f"writer-{w}"  # updated again and again: the last acknowledged version must win
            assert await _send(client, report(own, f"{w}.{j}"))
            acked[own] = f"{w}.{j}"
            new = f"writer-{w}-new-{j}"  # registered once
            if await _send(client, report(new, "1", duplicate=(j % 4 == 3))):
                acked[new] = "1"
            else:
                refused.add(new)

    with server_process({"CLUSTERQL_DATABASE_URL": url}) as server:
        headers = {"Authorization": f"Bearer {secrets['controller']}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
            await asyncio.gather(*(writer(w, client) for w in range(writers)))
        stored = await _stored(server.url, secrets["admin"])

    assert len(refused) == writers * reports_each // 4  # the reports with duplicate node names
    assert all(len(versions) == 1 for versions in stored.values()), "a cluster is listed twice"
    assert {name: v[0] for name, v in stored.items()} == acked
    assert not refused & set(stored)


async def test_a_killed_server_keeps_every_acknowledged_report(
    database: tuple[str, dict[str, str]],
) -> None:
    url, secrets = database
    acked: set[str] = set()
    enough = asyncio.Event()

    async def writer(w: int, client: httpx.AsyncClient) -> None:
        for j in range(10_000):
            name = f"crash-{w}-{j}"
            try:
                if await _send(client, report(name, "1", node_count=50)):
                    acked.add(name)
            except httpx.TransportError:
                return  # the server died mid-request: that report's fate is unknown
            if len(acked) >= 60:
                enough.set()

    with server_process({"CLUSTERQL_DATABASE_URL": url}) as server:
        headers = {"Authorization": f"Bearer {secrets['controller']}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            tasks = [asyncio.create_task(writer(w, client)) for w in range(6)]
            await asyncio.wait_for(enough.wait(), timeout=120)
            server.process.send_signal(signal.SIGKILL)  # in the middle of the burst
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        assert server.process.wait(timeout=10) == -signal.SIGKILL

    with server_process({"CLUSTERQL_DATABASE_URL": url}) as restarted:
        stored = await _stored(restarted.url, secrets["admin"])
    missing = acked - set(stored)
    assert not missing, f"{len(missing)} acknowledged reports were lost"
    await _assert_intact(url)


async def _assert_intact(url: str) -> None:
    """What a crash must not break: on SQLite the file itself (the process that died wrote it);
    on both, every live cluster's counts agree with its node rows and no node lost its cluster.
    (A PostgreSQL server survives the death of a client process: its files are not in question.)
    """
    if make_url(url).get_backend_name() == "sqlite":
        with sqlite3.connect(make_url(url).database or "") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    per_cluster = (
        select(nodes.c.cluster_id, func.count().label("rows"))
        .group_by(nodes.c.cluster_id)
        .subquery()
    )
    disagreeing = (
        select(clusters.c.name)
        .select_from(clusters.outerjoin(per_cluster, per_cluster.c.cluster_id == clusters.c.id))
        .where(
            clusters.c.removed_at.is_(None),
            clusters.c.nodes_count != func.coalesce(per_cluster.c.rows, 0),
        )
    )
    orphans = (
        select(func.count())
        .select_from(nodes.outerjoin(clusters, clusters.c.id == nodes.c.cluster_id))
        .where(clusters.c.id.is_(None) | clusters.c.removed_at.is_not(None))
    )
    engine = create_engine(url)
    try:
        async with read_transaction(engine) as conn:
            assert (await conn.execute(disagreeing)).all() == []
            assert (await conn.execute(orphans)).scalar_one() == 0
    finally:
        await engine.dispose()
