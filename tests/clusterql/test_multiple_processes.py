"""Several `clusterql serve` processes on one PostgreSQL database keep every promise of one.

Two servers, as two machines behind a load balancer would run them (the first with two worker
processes of its own): a token revoked anywhere is refused everywhere on its next request; a
cursor made by one is good at the other; concurrent reports through both serialize per cluster,
no reader sees half of one, racing first reports of one name register it once, and no
acknowledged report is lost.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from models.engine import create_engine
from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_on
from tests.documents import REPORT
from tests.live_server import serve_process, token_client
from tests.postgres_server import PostgresServer

LIST = "/runtime/api/v1/clusters"
STATUSES = ["MONITORED", "MONITORED_WITH_SENSOR", "FAILED", "INSTALLATION_FAILED", "DISABLED"]
COUNTS = {  # REST count field -> the node statuses it counts
    "running_nodes_count": {"monitored", "monitored_with_sensor"},
    "failed_nodes_count": {"failed"},
    "failed_to_install_nodes_count": {"installation_failed"},
    "disabled_nodes_count": {"disabled"},
}


@dataclass(frozen=True)
class Fleet:
    """Two servers on one database, and the tokens to call them with."""

    database_url: str
    servers: tuple[str, str]
    admin: str
    controller: str


@pytest.fixture(scope="module")
def fleet(postgres: PostgresServer) -> Iterator[Fleet]:
    """Started once for the module: the tests below keep to clusters and tokens of their own."""
    database_url = asyncio.run(migrated_database_on(postgres.url))
    admin, controller = asyncio.run(factories.admin_and_controller(database_url))
    env = {"CLUSTERQL_DATABASE_URL": database_url}
    with serve_process(env, workers=2) as first, serve_process(env) as second:
        yield Fleet(database_url, (first.url, second.url), admin, controller)


async def test_a_token_revoked_through_one_process_is_refused_by_the_others(
    fleet: Fleet,
) -> None:
    engine = create_engine(fleet.database_url)
    secret = await factories.token(engine, Permission.ADMIN, name="leaving")
    await engine.dispose()
    clients = [token_client(url, secret) for url in fleet.servers]
    try:
        for client in clients:  # accepted everywhere (and any worker has seen it)
            for _ in range(4):
                assert (await client.post(LIST, json={})).status_code == 200

        command = [sys.executable, "-m", "clusterql.cli", "token", "revoke", "leaving"]
        revoked = await asyncio.to_thread(
            subprocess.run,
            [*command, "--database-url", fleet.database_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert revoked.returncode == 0, revoked.stderr

        for client in clients:  # the very next request, at every process and worker
            for _ in range(4):
                response = await client.post(LIST, json={})
                assert response.status_code == 401
    finally:
        for client in clients:
            await client.aclose()


async def test_a_cursor_made_by_one_process_is_good_at_the_other(fleet: Fleet) -> None:
    engine = create_engine(fleet.database_url)
    names_in = [f"cursor-{i:02}" for i in (5, 3, 9, 1, 7, 2)]
    await factories.insert(engine, [factories.cluster(name) for name in names_in])
    await engine.dispose()
    body: dict[str, Any] = {
        "limit": 2,
        "order_by": "name",
        "direction": "desc",
        "filters": {"name": "cursor-"},
    }
    names: list[str] = []
    async with (
        token_client(fleet.servers[0], fleet.admin) as a,
        token_client(fleet.servers[1], fleet.admin) as b,
    ):
        clients = [a, b]
        for turn in range(10):  # alternate: each cursor is used at the process that did not make it
            page = (await clients[turn % 2].post(LIST, json=body)).json()
            names += [c["name"] for c in page["clusters"]]
            if "next_key" not in page["pagination"]:
                break
            body["next_key"] = page["pagination"]["next_key"]
            assert not body["next_key"].isdigit()  # an opaque, signed cursor

    assert names == sorted(names_in, reverse=True)


# ---------------------------------------------------------------- concurrent reports


def _report(name: str, version: str, size: int) -> dict[str, Any]:
    """A report whose every node says which report it came from (its hostname), with nodes kept
    by name across reports (updated in place) and nodes only this version has (inserted)."""
    kept = [(f"node-{i}", i) for i in range(size)]
    own = [(f"v{version}-{i}", i + 1) for i in range(size % 3)]
    return {
        "name": name,
        "provider": "kubernetes",
        "regions": [f"r-{version}"],
        "controllerVersion": version,
        "controllerStatus": "RUNNING",
        "nodes": [
            {
                "name": node,
                "hostname": f"{version}-host-{node}",
                "status": STATUSES[(i + size) % len(STATUSES)],
                "sensorInstalled": False,
            }
            for node, i in kept + own
        ],
    }


async def _send(client: httpx.AsyncClient, state: dict[str, Any]) -> bool:
    response = await client.post("/graphql", json={"query": REPORT, "variables": {"input": state}})
    assert response.status_code == 200, response.text  # never a 500 or 503 on a healthy database
    payload = response.json()
    assert not payload.get("errors"), payload
    return True


def _check_consistent(cluster: dict[str, Any]) -> None:
    """One cluster of one response: counts agree with its nodes, all from one report."""
    nodes = cluster["nodes"]
    assert cluster["nodes_count"] == len(nodes)
    for field, statuses in COUNTS.items():
        assert cluster[field] == sum(n["status"] in statuses for n in nodes), field
    version = cluster["controller_version"]
    assert all(n["hostname"].startswith(f"{version}-host-") for n in nodes), cluster
    assert cluster["regions"] == [f"r-{version}"]


async def _all_clusters(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every cluster of this test (not the other tests' `cursor-*` ones), in one response."""
    body = {"limit": 100, "return_nodes": True, "filters": {"providers": ["kubernetes"]}}
    response = await client.post(LIST, json=body)
    assert response.status_code == 200, response.text
    page = response.json()
    assert "next_key" not in page["pagination"]
    return page["clusters"]


async def test_concurrent_reports_through_both_processes_keep_every_guarantee(
    fleet: Fleet,
) -> None:
    shared = [f"shared-{k}" for k in range(4)]
    writers_per_server, reports_each = 3, 12
    sent: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in shared}  # name -> version
    acked: dict[str, set[str]] = {name: set() for name in shared}
    own_acked: set[str] = set()
    reads = 0
    writing = True

    async def writer(client: httpx.AsyncClient, w: int) -> None:
        for j in range(reports_each):
            name = shared[(w + j) % len(shared)]
            version = f"{w}.{j}"
            state = _report(name, version, size=(w * 7 + j * 5) % 9)
            sent[name][version] = state
            if await _send(client, state):
                acked[name].add(version)
            own = f"own-{w}-{j}"  # registered once, through this process
            if await _send(client, _report(own, "1", size=2)):
                own_acked.add(own)

    async def reader(client: httpx.AsyncClient) -> None:
        nonlocal reads
        while writing:
            for cluster in await _all_clusters(client):
                _check_consistent(cluster)
            reads += 1

    controllers = [token_client(url, fleet.controller) for url in fleet.servers]
    admins = [token_client(url, fleet.admin) for url in fleet.servers]
    try:
        # Racing first reports: the same new name through both processes at the same moment.
        for k in range(8):
            states = [_report(f"race-{k}", f"race.{k}.{s}", size=3) for s in (0, 1)]
            await asyncio.gather(*(_send(c, s) for c, s in zip(controllers, states, strict=True)))

        readers = [asyncio.create_task(reader(client)) for client in admins]
        await asyncio.gather(
            *(writer(controllers[w % 2], w) for w in range(writers_per_server * len(fleet.servers)))
        )
        writing = False
        await asyncio.gather(*readers)
        listed = await _all_clusters(admins[1])
        listed_elsewhere = await _all_clusters(admins[0])
    finally:
        for client in controllers + admins:
            await client.aclose()

    assert reads >= 2
    assert listed == listed_elsewhere  # both processes read the same committed state
    final = {c["name"]: c for c in listed}
    assert len(final) == len(listed)  # no name registered twice
    assert {f"race-{k}" for k in range(8)} <= set(final)  # each registered once, both acked
    assert own_acked <= set(final)  # no acknowledged registration lost
    for name in shared:
        cluster = final[name]
        _check_consistent(cluster)
        version = cluster["controller_version"]
        assert version in acked[name]  # the last report to commit, whole
        expected = {
            (n["name"], n["hostname"], n["status"].lower()) for n in sent[name][version]["nodes"]
        }
        assert {(n["name"], n["hostname"], n["status"]) for n in cluster["nodes"]} == expected
