"""What one request costs the database: the token check and the page share one transaction.

On PostgreSQL the statements are counted on the wire (`tests/pg_wire.py`), so nothing the
product does is hidden: a first page of 100 clusters with their nodes is BEGIN, the token, the
page, the count, the nodes, ROLLBACK; a later page adds the id check of its `next_key`. On SQLite
SQLite's own trace callback counts them. A pooled connection killed by the
server (`pg_terminate_backend`) costs the next request nothing visible.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.settings import Settings
from models.tokens import Permission
from rest_shim.operations import LIST_CLUSTERS
from tests import factories
from tests.conftest import in_process
from tests.databases import migrated_database_url, postgres_server_url
from tests.pg_wire import WireLog, counting_proxy

LIST = "/runtime/api/v1/clusters"
REPORT = """mutation R($input: ClusterReport!) {
  reportCluster(input: $input) { id nodesCount nodes(first: 1) { name } }
}"""


@dataclass
class Counted:
    client: httpx.AsyncClient
    engine: AsyncEngine
    statements: list[str]
    database_url: str
    application: Any
    secret: str


class _SqliteTrace:
    """SQLite: every statement SQLite itself runs (its trace callback), BEGIN and ROLLBACK
    included, whoever sent it: SQLAlchemy or the driver directly."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def attach(self, engine: AsyncEngine) -> None:
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            driver = dbapi_connection.driver_connection
            await_(driver.set_trace_callback(self._statement))

        event.listen(engine.sync_engine, "connect", on_connect)
        await engine.dispose()  # the pooled connections were made before: new ones are traced

    def _statement(self, statement: str) -> None:  # in the driver's thread
        if not statement.startswith("PRAGMA"):
            self.statements.append(statement)


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[Counted]:
    database_url = await migrated_database_url(tmp_path)
    async with _proxied(database_url) as (url, wire):
        application = create_app(Settings(database_url=url))
        async with LifespanManager(application):
            engine: AsyncEngine = resources(application).engine
            secret = await factories.token(engine, Permission.ADMIN)
            await factories.insert(engine, [factories.cluster(node_count=20) for _ in range(150)])
            if wire is None:
                trace = _SqliteTrace()
                await trace.attach(engine)
                log = trace.statements
            else:
                log = wire.statements
            async with in_process(application, secret) as client:
                # warm: the token's last use written (on a second connection), and asyncpg's
                # type introspection for the nodes statement done on both pooled connections
                for _ in range(3):
                    await client.post(LIST, json={"limit": 1, "return_nodes": True})
                log.clear()
                yield Counted(client, engine, log, database_url, application, secret)


def _proxied(database_url: str) -> Any:
    if make_url(database_url).get_backend_name() == "postgresql":
        return counting_proxy(database_url)
    return _no_proxy(database_url)


@contextlib.asynccontextmanager
async def _no_proxy(database_url: str) -> AsyncIterator[tuple[str, WireLog | None]]:
    yield database_url, None


def _kinds(statements: list[str]) -> list[str]:
    """Each statement named by what it does."""
    kinds = []
    for statement in statements:
        text = " ".join(statement.split()).upper().rstrip(";")
        if text.startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            kinds.append(text.split()[0])
        elif "FROM API_TOKENS" in text:
            kinds.append("token")
        elif "COUNT(" in text and "LIMIT" in text:
            kinds.append("page+count")  # the page, with the count of all as one more column
        elif "COUNT(" in text:
            kinds.append("count")
        elif "FROM NODES" in text:
            kinds.append("nodes")
        elif "FROM CLUSTERS" in text and "LIMIT" in text:
            kinds.append("page")
        elif "FROM CLUSTERS" in text:
            kinds.append("id check")
        else:
            kinds.append(statement)
    return kinds


async def test_a_first_page_with_nodes_is_five_statements_in_one_transaction(
    counted: Counted,
) -> None:
    response = await counted.client.post(LIST, json={"limit": 100, "return_nodes": True})
    assert response.status_code == 200
    assert len(response.json()["clusters"]) == 100
    assert response.json()["total_count"] == 150
    assert _kinds(counted.statements) == ["BEGIN", "token", "page+count", "nodes", "ROLLBACK"]


async def test_the_same_page_over_graphql_costs_the_same(counted: Counted) -> None:
    variables = {"limit": 100, "withNodes": True}
    response = await counted.client.post(
        "/graphql", json={"query": LIST_CLUSTERS, "variables": variables}
    )
    assert response.status_code == 200
    assert "errors" not in response.json()
    assert _kinds(counted.statements) == ["BEGIN", "token", "page+count", "nodes", "ROLLBACK"]


async def test_a_page_without_its_total_count_reads_no_count(counted: Counted) -> None:
    query = "{ clusters(limit: 3) { clusters { name } } }"
    response = await counted.client.post("/graphql", json={"query": query})
    assert len(response.json()["data"]["clusters"]["clusters"]) == 3
    assert _kinds(counted.statements) == ["BEGIN", "token", "page", "ROLLBACK"]


async def test_a_total_count_asked_in_fragments_is_read_with_the_page(counted: Counted) -> None:
    query = (
        "query { clusters(limit: 3) { ...Page } } "
        "fragment Page on ClusterPage { ... on ClusterPage { ...Total } clusters { name } } "
        "fragment Total on ClusterPage { totalCount }"
    )
    response = await counted.client.post("/graphql", json={"query": query})
    assert response.json()["data"]["clusters"]["totalCount"] == 150
    assert _kinds(counted.statements) == ["BEGIN", "token", "page+count", "ROLLBACK"]


async def test_a_relay_page_reads_its_total_count_with_it(counted: Counted) -> None:
    query = "{ clustersConnection(last: 3) { totalCount edges { node { name } } } }"
    response = await counted.client.post("/graphql", json={"query": query})
    connection = response.json()["data"]["clustersConnection"]
    assert (connection["totalCount"], len(connection["edges"])) == (150, 3)
    assert _kinds(counted.statements) == ["BEGIN", "token", "page+count", "ROLLBACK"]


async def test_a_page_of_2_and_a_page_of_100_with_nodes_cost_the_same_statements(
    counted: Counted,
) -> None:
    kinds = []
    for limit in (2, 100):
        counted.statements.clear()
        response = await counted.client.post(LIST, json={"limit": limit, "return_nodes": True})
        assert [c["nodes_count"] for c in response.json()["clusters"]] == [20] * limit
        kinds.append(_kinds(counted.statements))
    assert kinds[0] == kinds[1]  # no statement per cluster: the nodes of a page are one
    assert kinds[0].count("nodes") == 1


async def test_nodes_with_their_cluster_cost_the_same_statements_for_2_and_100_nodes(
    counted: Counted,
) -> None:
    query = "query N($n: Int) { nodes(first: $n) { edges { node { name cluster { name } } } } }"
    kinds = []
    for first in (2, 100):
        counted.statements.clear()
        response = await counted.client.post(
            "/graphql", json={"query": query, "variables": {"n": first}}
        )
        edges = response.json()["data"]["nodes"]["edges"]
        assert len(edges) == first
        assert len({e["node"]["cluster"]["name"] for e in edges}) == (1 if first == 2 else 5)
        kinds.append(_kinds(counted.statements))
    assert kinds[0] == kinds[1]  # the clusters of a page of nodes are one statement
    assert len(kinds[0]) == 5  # BEGIN, token, nodes, clusters, ROLLBACK


async def test_a_later_page_adds_only_the_check_of_its_key(counted: Counted) -> None:
    first = (await counted.client.post(LIST, json={"limit": 10})).json()
    counted.statements.clear()
    key = first["pagination"]["next_key"]
    response = await counted.client.post(LIST, json={"limit": 10, "next_key": key})
    assert response.status_code == 200
    assert _kinds(counted.statements) == ["BEGIN", "token", "id check", "page+count", "ROLLBACK"]


@pytest.mark.parametrize("path", [LIST, "/graphql"])
async def test_the_answer_is_sent_before_the_snapshot_rolls_back(
    counted: Counted, path: str
) -> None:
    # given: the app, behind a layer that notes the statements run when the answer is complete
    at_answer: list[list[str]] = []

    async def noting(scope: Any, receive: Any, send: Any) -> None:
        async def send_noting(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                at_answer.append(_kinds(counted.statements))
            await send(message)

        await counted.application(scope, receive, send_noting)

    body: dict[str, Any] = {"limit": 5}
    if path == "/graphql":
        body = {"query": LIST_CLUSTERS, "variables": {"limit": 5, "withNodes": False}}
    # when
    async with in_process(noting, counted.secret) as client:
        response = await client.post(path, json=body)
    # then: the answer did not wait for the ROLLBACK, which came once it was sent
    assert response.status_code == 200, response.text
    assert at_answer == [["BEGIN", "token", "page+count"]]
    assert _kinds(counted.statements) == ["BEGIN", "token", "page+count", "ROLLBACK"]


async def test_a_refused_token_is_one_lookup(counted: Counted) -> None:
    response = await counted.client.post(
        LIST, json={}, headers={"Authorization": "Bearer cql_" + "x" * 43}
    )
    assert response.status_code == 401
    assert _kinds(counted.statements) == ["BEGIN", "token", "ROLLBACK"]


REFUSED_BY_COST = {
    "aliases": "{ clusters(limit: 1) { "
    + " ".join(f"a{i}: totalCount" for i in range(51))
    + " } }",
    "nodes": "{ a: clusters(limit: 100) { clusters { nodes { id } } } "
    "b: clusters(limit: 100) { clusters { nodes { id } } } }",
    "rootFields": "{ " + " ".join(f"r{i}: clusters {{ totalCount }}" for i in range(11)) + " }",
    "tokens": "{ clusters { totalCount } }" + "\n#" * 2_000,
}


@pytest.mark.parametrize("limit", sorted(REFUSED_BY_COST))
async def test_an_operation_refused_by_a_cost_limit_costs_no_statement(
    counted: Counted, limit: str
) -> None:
    response = await counted.client.post("/graphql", json={"query": REFUSED_BY_COST[limit]})
    assert response.json()["errors"][0]["extensions"]["limit"] == limit
    # what authentication costs (as for a refused token), and nothing for the operation
    assert _kinds(counted.statements) == ["BEGIN", "token", "ROLLBACK"]


async def _kill_pooled_connections(database_url: str) -> int:
    """Terminate every server process of the app (application_name clusterql)."""
    url = make_url(database_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'clusterql' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return int(killed)


def _report(name: str) -> dict[str, Any]:
    node = {"name": "n1", "hostname": "h1", "status": "MONITORED", "sensorInstalled": False}
    state = {
        "name": name, "provider": "aws", "regions": [], "controllerVersion": "1",
        "controllerStatus": "RUNNING", "nodes": [node],
    }  # fmt: skip
    return {"query": REPORT, "variables": {"input": state}}


@pytest.mark.skipif(
    postgres_server_url() is None,
    reason="pooled connections killed by the server: runs in the PostgreSQL pass",
)
@pytest.mark.parametrize("noticed", [True, False], ids=["noticed-while-idle", "found-on-use"])
async def test_a_pooled_connection_the_server_killed_costs_the_next_request_nothing(
    counted: Counted, noticed: bool
) -> None:
    for attempt in range(3):
        assert await _kill_pooled_connections(counted.database_url) >= 1, attempt
        if noticed:
            await asyncio.sleep(0.3)  # asyncpg reads the server's goodbye while idle
        page = await counted.client.post(LIST, json={"limit": 5, "return_nodes": True})
        assert page.status_code == 200, page.text
        assert len(page.json()["clusters"]) == 5
        await _kill_pooled_connections(counted.database_url)
        if noticed:
            await asyncio.sleep(0.3)
        report = await counted.client.post("/graphql", json=_report(f"after-kill-{attempt}"))
        assert report.status_code == 200, report.text
        assert report.json()["data"]["reportCluster"]["nodesCount"] == 1


@pytest.mark.skipif(
    postgres_server_url() is None,
    reason="the connection pool is PostgreSQL's: runs in the PostgreSQL pass",
)
async def test_eight_clients_at_once_reuse_the_pools_connections(counted: Counted) -> None:
    """With the default settings, 8 requests at a time, round after round, open no connection
    after the first round: the pool keeps what a steady load needs (an overflow connection
    would be closed as it came back, and a new one opened for the next request)."""
    pool = counted.engine.sync_engine.pool
    opened, in_use, peak = 0, 0, 0

    def on_connect(*_: Any) -> None:
        nonlocal opened
        opened += 1

    def on_checkout(*_: Any) -> None:
        nonlocal in_use, peak
        in_use += 1
        peak = max(peak, in_use)

    def on_checkin(*_: Any) -> None:
        nonlocal in_use
        in_use -= 1

    event.listen(pool, "connect", on_connect)
    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)

    async def page() -> None:
        response = await counted.client.post(LIST, json={"limit": 10})
        assert response.status_code == 200, response.text

    await asyncio.gather(*(page() for _ in range(8)))
    after_first = opened
    for _ in range(10):
        await asyncio.gather(*(page() for _ in range(8)))
    assert peak == 8  # the 8 did hold 8 connections at once
    assert opened == after_first, f"{opened - after_first} connections opened after the first round"
