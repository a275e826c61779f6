"""`clusterql db upgrade`, `serve --no-migrate` and `clusterql db copy`, run as the real console
script; the databases come from tests.databases (SQLite files, or PostgreSQL when configured)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.settings import Settings
from models import migrations, tokens
from models.engine import create_engine, read_transaction, write_transaction
from models.records import NodeStatus
from models.service_keys import get_or_create
from models.tables import api_tokens, clusters, nodes, service_keys
from models.tokens import Permission
from tests import factories
from tests.clusterql.conftest import Cli
from tests.databases import fresh_database_url

CONSOLE_SCRIPT = Path(sys.executable).with_name("clusterql")
ALL_TABLES = (api_tokens, clusters, nodes, service_keys)


@pytest.fixture
def cli(run_isolated: Cli) -> Cli:
    """Runs the installed `clusterql` script: no CLUSTERQL_* from outside, cwd a temp dir."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_isolated([str(CONSOLE_SCRIPT), *args], env)

    return run


@pytest.fixture
async def target_url(tmp_path: Path) -> str:
    return await fresh_database_url(tmp_path)


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A seeded SQLite database, the kind `db copy` moves to PostgreSQL."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/source.db")
    await migrations.upgrade(engine)
    yield engine
    await engine.dispose()


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("clusterql: error: ")
    assert result.stderr.count("\n") == 1
    return result.stderr


async def _rows(engine: AsyncEngine, table: Table) -> list[dict[str, Any]]:
    query = select(table).order_by(*table.primary_key.columns)
    async with read_transaction(engine) as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def _contents(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    return {table.name: await _rows(engine, table) for table in ALL_TABLES}


async def _pending(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return await migrations.pending(engine)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- db upgrade


async def test_db_upgrade_applies_the_migrations_then_finds_nothing_to_do(
    cli: Cli, database_url: str
) -> None:
    first = cli("db", "upgrade", "--database-url", database_url)
    second = cli("db", "upgrade", "--database-url", database_url)

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"applied {revision} ({migrations.title(revision)})" for revision in migrations.revisions()
    ]
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"the database is up to date (revision {migrations.head()})\n"
    assert await _pending(database_url) == []


async def test_db_upgrade_takes_the_url_from_the_environment(cli: Cli, database_url: str) -> None:
    result = cli("db", "upgrade", env={"CLUSTERQL_DATABASE_URL": database_url})

    assert result.returncode == 0, result.stderr
    assert await _pending(database_url) == []


# ---------------------------------------------------------------- serve --no-migrate


async def test_serve_no_migrate_refuses_a_database_with_pending_migrations(
    cli: Cli, database_url: str
) -> None:
    result = cli("serve", "--no-migrate", "--port", "0", "--database-url", database_url)

    message = _one_line_error(result)
    assert "lacks schema migrations" in message
    assert "clusterql db upgrade" in message
    assert await _pending(database_url) == migrations.revisions()  # nothing was applied


async def test_clusterql_migrate_false_refuses_just_the_same(cli: Cli, database_url: str) -> None:
    env = {"CLUSTERQL_MIGRATE": "false", "CLUSTERQL_DATABASE_URL": database_url}
    result = cli("serve", "--port", "0", env=env)

    assert "clusterql db upgrade" in _one_line_error(result)


async def test_the_app_does_not_start_on_pending_migrations_when_told_not_to_migrate(
    database_url: str,
) -> None:
    app = create_app(Settings(database_url=database_url, migrate=False))

    with pytest.raises(RuntimeError, match="clusterql db upgrade"):
        async with LifespanManager(app):
            pass
    assert await _pending(database_url) == migrations.revisions()


async def test_the_app_starts_without_migrating_on_an_upgraded_database(
    cli: Cli, database_url: str
) -> None:
    assert cli("db", "upgrade", "--database-url", database_url).returncode == 0
    app = create_app(Settings(database_url=database_url, migrate=False))

    async with LifespanManager(app):
        assert await migrations.pending(resources(app).engine) == []


# ---------------------------------------------------------------- db copy


async def _seed(engine: AsyncEngine) -> int:
    """Tokens (one expired, one revoked), clusters with nodes of every state, tombstones (the
    newest cluster among them, so its nodes had the largest node ids) and a service key.
    Returns the largest node id given out, which no node row holds any more."""
    now = datetime.now(UTC)
    await factories.token(engine, Permission.ADMIN, name="admin")
    await factories.token(engine, Permission.CONTROLLER, name="old", expires_at=now)
    await factories.token(engine, Permission.CONTROLLER, Permission.ADMIN, name="gone")
    async with write_transaction(engine) as conn:
        await tokens.revoke(conn, "gone", now)
    sensor = factories.node(
        "sensor-node",
        NodeStatus.MONITORED_WITH_SENSOR,
        sensor_version="2.1.0",
        sensor_last_updated=now - timedelta(minutes=3),
    )
    states = [
        factories.cluster(node_count=5, provider="gcp", regions=("us-east1", "europe-west4")),
        factories.cluster(node_states=[sensor, *factories.nodes(3)]),
        factories.cluster(node_count=0, provider="kubernetes", regions=()),
        *(factories.cluster(node_count=4) for _ in range(5)),
    ]
    ids = await factories.insert(engine, states)
    largest_node_id = max(row["id"] for row in await _rows(engine, nodes))
    for removed in (ids[2], ids[4], ids[-1]):
        await factories.remove(engine, removed)
    await get_or_create(engine, "cursor")
    return largest_node_id


async def test_db_copy_keeps_every_row_and_id_and_new_ids_continue_after_them(
    cli: Cli, source: AsyncEngine, target_url: str
) -> None:
    # Given a seeded SQLite database with tombstones
    largest_node_id = await _seed(source)
    before = await _contents(source)
    assert max(row["id"] for row in before["nodes"]) < largest_node_id  # deleted with a cluster

    # When it is copied into a new database
    result = cli(
        "db", "copy", "--from", source.url.render_as_string(hide_password=False), "--to", target_url
    )

    # Then every row of every table is there, column for column, ids included
    assert result.returncode == 0, result.stderr
    assert "copied 3 tokens, 8 clusters (3 of them removed)" in result.stdout
    assert "every id kept" in result.stdout
    target = create_engine(target_url)
    try:
        assert await migrations.pending(target) == []
        after = await _contents(target)
        assert after == before
        assert sum(1 for row in after["clusters"] if row["removed_at"] is not None) == 3

        # And what is registered afterwards gets ids above every copied one, tombstones included
        [new_cluster] = await factories.insert(target, [factories.cluster(node_count=2)])
        await factories.token(target, Permission.ADMIN, name="after-copy")
        new_nodes = [
            row["id"] for row in await _rows(target, nodes) if row["cluster_id"] == new_cluster
        ]
        new_token = (await _rows(target, api_tokens))[-1]
    finally:
        await target.dispose()
    assert new_cluster > max(row["id"] for row in before["clusters"])
    assert before["clusters"][-1]["removed_at"] is not None  # the largest copied id: a tombstone
    assert min(new_nodes) > largest_node_id
    assert new_token["id"] > max(row["id"] for row in before["api_tokens"])


async def test_db_copy_refuses_a_target_that_holds_rows_and_writes_nothing(
    cli: Cli, source: AsyncEngine, target_url: str
) -> None:
    # Given a seeded source and a target that already holds a token
    await _seed(source)
    target = create_engine(target_url)
    try:
        await migrations.upgrade(target)
        await factories.token(target, Permission.ADMIN, name="already-here")
        before = await _contents(target)

        # When it is copied there, then the copy is refused and the target is unchanged
        result = cli(
            "db",
            "copy",
            "--from",
            source.url.render_as_string(hide_password=False),
            "--to",
            target_url,
        )

        assert "already holds rows (api_tokens: 1)" in _one_line_error(result)
        assert await _contents(target) == before
    finally:
        await target.dispose()


async def test_db_copy_refuses_a_source_with_pending_migrations(
    cli: Cli, tmp_path: Path, target_url: str
) -> None:
    empty_source = f"sqlite+aiosqlite:///{tmp_path}/empty.db"

    result = cli("db", "copy", "--from", empty_source, "--to", target_url)

    message = _one_line_error(result)
    assert "the source: the database lacks schema migrations" in message
    assert f"clusterql db upgrade --database-url {empty_source}" in message
    assert await _pending(target_url) == migrations.revisions()  # the target was not touched
