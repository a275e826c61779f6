"""Where tests get a database of their own: an SQLite file, or a fresh PostgreSQL database.

The contract, shared by every test module that needs a database:

- `await fresh_database_url(tmp_path)` returns the SQLAlchemy async URL of an EMPTY database (no
  tables, not even `alembic_version`) that no other test uses. Call it as often as needed: every
  call gives a new database.
- By default it is an SQLite file in `tmp_path`
  (`sqlite+aiosqlite:///<tmp_path>/clusterql_test_<hex>.db`), not created yet: the first
  connection creates it.
- When the environment variable `CLUSTERQL_TEST_POSTGRES_URL` holds a PostgreSQL server URL (e.g.
  `postgresql+asyncpg://postgres@127.0.0.1:5432/postgres`; its database is only used to run
  `CREATE DATABASE`), it is a new database `clusterql_test_<hex>` created on that server, and the
  returned URL is the server URL with that database. The databases are not dropped: the server is
  expected to be a throwaway one (CI starts it in a temporary directory);
  `await drop_fresh_databases()` drops those made by this process, for a session fixture to call.
- `postgres_server_url()` tells which of the two is in force (None: SQLite), for the few tests
  that are about one database only.
- `await migrated_database_url(tmp_path)` is like `fresh_database_url` but the database already
  has the current schema (every migration applied). On PostgreSQL it is a copy of a template
  database migrated once per test session (`CREATE DATABASE ... TEMPLATE`, far faster than
  migrating each one); on SQLite a fresh file, migrated now.
- `await migrated_database_on(server_url)` does the same on a given PostgreSQL server, for tests
  that start their own (tests/postgres_server.py), e.g. to stop and restart it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from models import migrations
from models.engine import create_engine
from models.faults import sqlstate

POSTGRES_URL_VARIABLE = "CLUSTERQL_TEST_POSTGRES_URL"

NewEngine = Callable[[], Awaitable[AsyncEngine]]  # the `new_engine` fixture of tests/models

_created: list[str] = []
_templates: dict[str, str] = {}  # server URL -> its migrated template database, once made
_OBJECT_IN_USE = "55006"  # CREATE DATABASE ... TEMPLATE while a session still uses the template


def postgres_server_url() -> str | None:
    """The PostgreSQL server the tests run on, or None when they run on SQLite."""
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


async def fresh_database_url(tmp_path: Path) -> str:
    """The URL of a new, empty database (see the module's docstring)."""
    name = f"clusterql_test_{secrets.token_hex(6)}"
    server = postgres_server_url()
    if server is None:
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"
    url = await create_database(server, name)
    _created.append(name)
    return url


async def create_database(server: str, name: str) -> str:
    """A new, empty database `name` on the PostgreSQL server `server`; its URL."""
    await _on_server(server, f'CREATE DATABASE "{name}"')
    return _database_url(server, name)


async def drop_fresh_databases() -> None:
    """Drop the PostgreSQL databases this process created (nothing to do on SQLite)."""
    server = postgres_server_url()
    while server is not None and _created:
        await _on_server(server, f'DROP DATABASE IF EXISTS "{_created.pop()}" WITH (FORCE)')


async def _on_server(server: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block: autocommit, one connection.
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def migrated_database_url(tmp_path: Path) -> str:
    """The URL of a new database with the current schema (see the module's docstring)."""
    server = postgres_server_url()
    if server is None:
        url = await fresh_database_url(tmp_path)
        await _migrate(url)
        return url
    url = await migrated_database_on(server)
    _created.append(make_url(url).database or "")
    return url


async def migrated_database_on(server: str) -> str:
    """The URL of a new database with the current schema on the PostgreSQL server `server`
    (a server URL, as for CLUSTERQL_TEST_POSTGRES_URL): a copy of a template database made and
    migrated at the first call for that server. Not dropped: for throwaway servers.
    """
    template = _templates.get(server)
    if template is None:
        template = f"clusterql_template_{secrets.token_hex(6)}"
        await _on_server(server, f'CREATE DATABASE "{template}"')
        if server == postgres_server_url():
            _created.append(template)
        await _migrate(_database_url(server, template))
        _templates[server] = template
    name = f"clusterql_test_{secrets.token_hex(6)}"
    await _copy_template(server, template, name)
    return _database_url(server, name)


def _database_url(server: str, database: str) -> str:
    return make_url(server).set(database=database).render_as_string(hide_password=False)


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


async def _copy_template(server: str, template: str, name: str) -> None:
    # The template's last session may still be closing on the server side for a moment.
    for attempt in range(50):
        try:
            await _on_server(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except Exception as exc:
            if sqlstate(exc) != _OBJECT_IN_USE or attempt == 49:
                raise
            await asyncio.sleep(0.05)
