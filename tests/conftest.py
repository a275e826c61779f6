"""Shared fixtures: a real database per test (an SQLite file, or a PostgreSQL database when
CLUSTERQL_TEST_POSTGRES_URL is set: see tests/databases.py), the real app, real tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.types import ASGIApp

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.settings import Settings
from models.tokens import Permission
from tests import factories
from tests.databases import drop_fresh_databases, migrated_database_url, postgres_server_url
from tests.postgres_server import PostgresServer, missing_binaries, postgres_server


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """On PostgreSQL, drop the databases the tests made once they are all done."""
    yield
    asyncio.run(drop_fresh_databases())


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server of the test module's own, which it may stop and start
    (tests/postgres_server.py); skipped without PostgreSQL's server binaries. Such a test runs
    the same whichever database the pass is on, so it runs once: in the SQLite pass."""
    if postgres_server_url() is not None:
        pytest.skip(
            "starts a PostgreSQL server of its own whatever the pass: runs in the SQLite pass"
        )
    reason = missing_binaries()
    if reason is not None:
        pytest.skip(
            "needs PostgreSQL's server binaries (scripts/system-deps installs them; CI has "
            f"them and runs this test in the SQLite pass): {reason}"
        )
    with postgres_server() as server:
        yield server


@pytest.fixture
async def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=await migrated_database_url(tmp_path))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def engine(app: Starlette) -> AsyncEngine:
    return resources(app).engine


@pytest.fixture
async def admin_secret(engine: AsyncEngine) -> str:
    return await factories.token(engine, Permission.ADMIN)


@pytest.fixture
async def controller_secret(engine: AsyncEngine) -> str:
    return await factories.token(engine, Permission.CONTROLLER)


def in_process(
    app: ASGIApp, secret: str | None = None, *, raise_app_exceptions: bool = True
) -> httpx.AsyncClient:
    """An HTTP client to `app` in-process, with a token's `secret` as its credentials if given."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    return httpx.AsyncClient(transport=transport, base_url="http://clusterql.test", headers=headers)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the app in-process, without credentials."""
    async with in_process(app) as c:
        yield c


@pytest.fixture
async def admin(app: Starlette, admin_secret: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the app in-process, as an administrator."""
    async with in_process(app, admin_secret) as c:
        yield c
