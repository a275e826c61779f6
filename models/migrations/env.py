"""Alembic's environment: how a migration reaches the database.

From code (`models.migrations`), `config.attributes["connection"]` holds a synchronous connection
already inside the caller's transaction: the migrations join it, and the caller commits.
From the `alembic` command (developers; see alembic.ini), the URL is `-x url=...`, else
CLUSTERQL_DATABASE_URL, else the default SQLite file, and this module makes its own engine.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection, make_url

from models.engine import create_engine
from models.migrations import DEFAULT_URL, context_options

config = context.config
if config.config_file_name is not None:  # the `alembic` command: its log output
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    given = context.get_x_argument(as_dictionary=True).get("url")
    return given or os.environ.get("CLUSTERQL_DATABASE_URL") or DEFAULT_URL


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **context_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    if context.is_offline_mode():  # `alembic upgrade --sql`: print the DDL
        url = _url()
        backend = make_url(url).get_backend_name()
        context.configure(url=url, literal_binds=True, **context_options(backend))
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_on_own_engine(_url()))
    else:
        _run(connection)


_main()
