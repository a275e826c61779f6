"""A database that cannot be used right now is HTTP 503 with `Retry-After`, never a 500.

In-process, on the suite's database (SQLite or PostgreSQL), two ways: the database stops
answering altogether (the app's engine is pointed at a PostgreSQL port where nothing listens,
so even the token lookup fails), and a write waits for a lock longer than its timeout (the token
lookup succeeds, the operation fails). A restart of a real server under load is in
test_database_outage.py.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from clusterql.database import resources
from clusterql.settings import Settings
from models.engine import EngineOptions, create_engine
from tests.databases import migrated_database_url, postgres_server_url
from tests.documents import COUNT, REPORT

MESSAGE = "the database is unavailable right now: try again in a few seconds"
STATEMENT_TIMEOUT_S = 0.5


def _report(name: str) -> dict[str, Any]:
    return {
        "query": REPORT,
        "variables": {
            "input": {
                "name": name,
                "provider": "aws",
                "regions": [],
                "controllerVersion": "1",
                "controllerStatus": "RUNNING",
                "nodes": [],
            }
        },
    }


@pytest.fixture
async def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=await migrated_database_url(tmp_path),
        database_statement_timeout=STATEMENT_TIMEOUT_S,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


@asynccontextmanager
async def _database_gone(app: Starlette) -> AsyncIterator[None]:
    """Within the block the app's database refuses connections."""
    kept = resources(app)
    url = f"postgresql+asyncpg://clusterql@127.0.0.1:{_closed_port()}/clusterql"
    gone = create_engine(url, EngineOptions(connect_timeout_s=1.0))
    app.state.resources = replace(kept, engine=gone)
    try:
        yield
    finally:
        app.state.resources = kept
        await gone.dispose()


def _assert_rest_503(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json() == {"error": MESSAGE}


def _assert_graphql_503(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    payload = response.json()
    assert payload.get("data") is None
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert [e["message"] for e in payload["errors"]] == [MESSAGE]


async def test_while_the_database_refuses_connections_every_api_answers_503(
    app: Starlette, admin: httpx.AsyncClient
) -> None:
    async with _database_gone(app):
        _assert_rest_503(await admin.post("/runtime/api/v1/clusters", json={}))
        _assert_rest_503(await admin.get("/runtime/api/v1/cluster/1"))
        _assert_graphql_503(await admin.post("/graphql", json={"query": COUNT}))
        _assert_graphql_503(await admin.post("/graphql", json=_report("gone")))

    # and when it answers again, so does the service
    assert (await admin.post("/runtime/api/v1/clusters", json={})).status_code == 200
    assert (await admin.post("/graphql", json={"query": COUNT})).status_code == 200


@asynccontextmanager
async def _write_lock_held(engine: AsyncEngine) -> AsyncIterator[None]:
    """Another session holds what a report needs until the block ends; reads stay possible."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(url.database or "", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # SQLite's one write lock
            yield
        finally:
            holder.close()
        return
    async with engine.connect() as conn:
        await conn.begin()
        # Conflicts with the row locks and writes of a report; plain SELECTs go on.
        await conn.execute(text("LOCK TABLE clusters IN EXCLUSIVE MODE"))
        yield
        await conn.rollback()


async def test_a_report_that_waits_for_a_lock_past_its_timeout_is_503_then_goes_through(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with _write_lock_held(engine):
        blocked = await admin.post("/graphql", json=_report("waiting"))

    _assert_graphql_503(blocked)
    again = await admin.post("/graphql", json=_report("waiting"))
    assert again.status_code == 200
    assert "errors" not in again.json()


async def test_readyz_follows_the_database_and_healthz_does_not(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/readyz")).status_code == 200
    async with _database_gone(app):
        _assert_rest_503(await client.get("/readyz"))
        assert (await client.get("/healthz")).status_code == 200  # the process itself is fine
    assert (await client.get("/readyz")).text == "ready\n"


@pytest.mark.skipif(
    postgres_server_url() is None,
    reason="SQLite's readers never wait (WAL): runs in the PostgreSQL pass",
)
async def test_a_page_whose_read_waits_past_its_timeout_is_503_then_answers(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # given: another session holds a lock that even a page's SELECT waits for
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(text("LOCK TABLE clusters IN ACCESS EXCLUSIVE MODE"))
        # when: a page is asked for (the token lookup reads api_tokens, which is free)
        blocked = await admin.post("/runtime/api/v1/clusters", json={})
        graphql = await admin.post("/graphql", json={"query": COUNT})
        await conn.rollback()
    # then: both are 503, as a database that cannot answer in time
    _assert_rest_503(blocked)
    _assert_graphql_503(graphql)
    assert (await admin.post("/runtime/api/v1/clusters", json={})).status_code == 200
