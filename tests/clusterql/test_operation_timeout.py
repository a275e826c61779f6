"""An operation past its time limit is cancelled, its snapshot closed, and answered 503 with
`Retry-After` in both APIs (README, "Limits").

A report that waits for a lock held by another transaction (SQLite's write lock, or the cluster's
row on PostgreSQL) is the real way an operation runs long here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.settings import Settings
from models.engine import checked_out, write_transaction
from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_url, postgres_server_url
from tests.scrape import grown, key, samples

TIMEOUT_S = 0.5
REPORT = "mutation R($input: ClusterReport!) { reportCluster(input: $input) { nodesCount } }"
COUNT = '{ cluster(id: "1") { nodesCount } }'


@pytest.fixture
async def hurried(tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = Settings(
        database_url=await migrated_database_url(tmp_path), graphql_timeout=TIMEOUT_S
    )
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@contextlib.asynccontextmanager
async def _admin_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` with a new Admin token."""
    secret = await factories.token(resources(app).engine, Permission.ADMIN)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://clusterql.test",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    ) as client:
        yield client


def _report(nodes: int) -> dict[str, Any]:
    node = {"hostname": "h", "status": "MONITORED", "sensorInstalled": False}
    state = {
        "name": "held", "provider": "aws", "regions": [], "controllerVersion": "1",
        "controllerStatus": "RUNNING",
        "nodes": [{"name": f"n{i}", **node} for i in range(nodes)],
    }  # fmt: skip
    return {"query": REPORT, "variables": {"input": state}}


async def _checked_out(engine: AsyncEngine) -> int:
    for _ in range(100):  # the cancelled transaction's connection is back within moments
        if checked_out(engine) == 0:
            return 0
        await asyncio.sleep(0.05)
    return checked_out(engine)


async def test_an_operation_past_its_time_limit_is_cancelled_and_answered_503(
    hurried: Starlette,
) -> None:
    engine: AsyncEngine = resources(hurried).engine
    async with _admin_client(hurried) as client:
        first = await client.post("/graphql", json=_report(1))
        assert first.json()["data"]["reportCluster"]["nodesCount"] == 1
        locked = asyncio.Event()
        release = asyncio.Event()

        async def hold_the_lock() -> None:
            async with write_transaction(engine) as conn:
                await conn.execute(text("UPDATE clusters SET name = name WHERE name = 'held'"))
                locked.set()
                await release.wait()

        holder = asyncio.create_task(hold_the_lock())
        await locked.wait()
        before = samples((await client.get("/metrics")).text)
        started = time.monotonic()
        graphql = await client.post("/graphql", json=_report(2))
        elapsed = time.monotonic() - started
        changed = grown(before, samples((await client.get("/metrics")).text))
        rest = await client.get("/runtime/api/v1/cluster/1")  # reads: not blocked by the lock
        release.set()
        await holder

        assert graphql.status_code == 503, graphql.text
        assert graphql.headers["Retry-After"].isdigit()
        error = graphql.json()["errors"][0]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "time limit (0.5 s)" in error["message"]
        assert TIMEOUT_S <= elapsed < 10  # not the 30 s of the statement timeout
        assert changed[key("clusterql_refusals_total", reason="operation_timeout")] == 1
        status = {"route": "/graphql", "method": "POST", "status": "503"}
        assert changed[key("clusterql_http_requests_total", **status)] == 1
        assert changed[key("clusterql_graphql_errors_total", code="SERVICE_UNAVAILABLE")] == 1
        assert rest.status_code == 200

        assert await _checked_out(engine) == 0  # the snapshot and the write were let go
        after = await client.post("/graphql", json={"query": COUNT})
        assert after.json()["data"]["cluster"]["nodesCount"] == 1  # the report did not apply
        again = await client.post("/graphql", json=_report(3))
        assert again.json()["data"]["reportCluster"]["nodesCount"] == 3


@pytest.mark.skipif(
    postgres_server_url() is None,
    reason="SQLite's readers never wait (WAL): runs in the PostgreSQL pass",
)
async def test_a_query_past_its_time_limit_is_cancelled_and_answered_503_in_both_apis(
    hurried: Starlette,
) -> None:
    # A query runs in the request's own coroutine (`ClusterqlSchema.execute`), not as a task
    # of its own: cancelled there, its answer is still on time and its connection let go.
    engine: AsyncEngine = resources(hurried).engine
    async with _admin_client(hurried) as client:
        assert (await client.post("/graphql", json=_report(1))).status_code == 200
        # given: another session holds a lock that even a page's SELECT waits for (the token
        # lookup reads api_tokens, which is free)
        async with engine.connect() as conn:
            await conn.begin()
            await conn.execute(text("LOCK TABLE clusters IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            rest = await client.post("/runtime/api/v1/clusters", json={})
            rest_elapsed = time.monotonic() - started
            started = time.monotonic()
            graphql = await client.post("/graphql", json={"query": COUNT})
            graphql_elapsed = time.monotonic() - started
            await conn.rollback()

        assert rest.status_code == 503, rest.text
        assert rest.headers["Retry-After"].isdigit()
        assert "time limit (0.5 s)" in rest.json()["error"]
        assert graphql.status_code == 503, graphql.text
        assert graphql.headers["Retry-After"].isdigit()
        error = graphql.json()["errors"][0]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "time limit (0.5 s)" in error["message"]
        for elapsed in (rest_elapsed, graphql_elapsed):
            assert TIMEOUT_S <= elapsed < 10  # not the 30 s of the statement timeout

        assert await _checked_out(engine) == 0  # the snapshots were let go
        after = await client.post("/graphql", json={"query": COUNT})
        assert after.json()["data"]["cluster"]["nodesCount"] == 1
        assert (await client.post("/runtime/api/v1/clusters", json={})).status_code == 200
