"""Schema migrations: a migrated database has exactly the models' schema, on SQLite and PostgreSQL.

`test_migrated_schema_has_no_drift` is the drift check CI runs: it fails when the models change
without a migration (generate one: see alembic.ini).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import migrations, tokens
from models.engine import create_engine, read_transaction, write_transaction
from models.listing import ClusterFilter
from models.migrations import BASELINE, SchemaError
from models.records import ControllerStatus
from models.rows import new_cluster, new_node
from models.summary import counted, summary
from models.tables import api_tokens, clusters, metadata, nodes
from models.tokens import Permission, Principal, TokenInfo, digest
from tests import factories
from tests.databases import NewEngine


@pytest.fixture
async def engine(new_engine: NewEngine) -> AsyncEngine:
    return await new_engine()


@pytest.fixture
async def other_engine(new_engine: NewEngine) -> AsyncEngine:
    return await new_engine()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _schema(connection: Connection) -> dict[str, Any]:
    """Everything the database says about our tables, as text: columns with their types,
    collations and defaults, indexes with their WHERE clauses, constraints, and (SQLite) the DDL."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE tbl_name NOT IN ('alembic_version', 'sqlite_sequence') ORDER BY name"
        ).all()
        return {"objects": [(*row[:3], " ".join((row[3] or "").split())) for row in rows]}
    columns = connection.execute(
        text(
            "SELECT table_name, column_name, ordinal_position, data_type, "
            "character_maximum_length, collation_name, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name <> 'alembic_version' ORDER BY table_name, ordinal_position"
        )
    ).all()
    indexes = connection.execute(
        text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version' ORDER BY indexname"
        )
    ).all()
    constraints = connection.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
            "AND conrelid::regclass::text <> 'alembic_version' ORDER BY conname"
        )
    ).all()
    return {
        "columns": [tuple(r) for r in columns],
        "indexes": [tuple(r) for r in indexes],
        "constraints": [tuple(r) for r in constraints],
    }


async def _create_all(engine: AsyncEngine) -> None:
    """The models' tables, made by the models themselves: what the schema set-up made before
    migrations existed."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


async def _drift(engine: AsyncEngine) -> list[Any]:
    """What Alembic finds different between the database and the models."""
    async with engine.connect() as conn:
        return await conn.run_sync(_differences)


async def _table_names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: inspect(c).get_table_names())


async def _column_names(engine: AsyncEngine, table: str) -> list[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: [col["name"] for col in inspect(c).get_columns(table)])


async def _execute(engine: AsyncEngine, *statements: str) -> None:
    """Run `statements` in one transaction."""
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def test_migrated_schema_has_no_drift(engine: AsyncEngine) -> None:
    # Given an empty database, when it is migrated
    await migrations.upgrade(engine)

    # Then Alembic finds no difference between it and the models
    assert await _drift(engine) == []


async def test_migrations_create_exactly_what_the_models_create(
    engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    # Given one database migrated and one made by the models themselves
    await migrations.upgrade(engine)
    await _create_all(other_engine)

    # Then both have the same tables, columns, types, collations, indexes (with their WHERE
    # clauses) and constraints: what compare_metadata does not look at is checked here
    async with engine.connect() as migrated, other_engine.connect() as created:
        assert await migrated.run_sync(_schema) == await created.run_sync(_schema)


async def test_pending_lists_every_revision_until_the_upgrade_applies_them(
    engine: AsyncEngine,
) -> None:
    # Given an empty database
    waiting = await migrations.pending(engine)
    assert waiting == migrations.revisions()
    assert waiting[0] == BASELINE
    assert waiting[-1] == migrations.head()

    # When it is upgraded, then it applied exactly those, and nothing is pending any more
    done = await migrations.upgrade(engine)
    assert done.applied == tuple(waiting)
    assert not done.adopted
    assert await migrations.pending(engine) == []

    # And a second upgrade does nothing
    assert (await migrations.upgrade(engine)).applied == ()


async def test_require_current_names_the_missing_revisions(engine: AsyncEngine) -> None:
    with pytest.raises(migrations.MigrationsPending) as raised:
        await migrations.require_current(engine)
    assert raised.value.revisions[0] == BASELINE

    await migrations.upgrade(engine)
    await migrations.require_current(engine)


async def test_concurrent_upgrades_take_turns(engine: AsyncEngine) -> None:
    # Given three engines (as three processes would have) on one empty database
    others = [create_engine(engine.url.render_as_string(hide_password=False)) for _ in range(2)]
    try:
        # When they all upgrade at once
        results = await asyncio.gather(*(migrations.upgrade(e) for e in (engine, *others)))
    finally:
        for other in others:
            await other.dispose()

    # Then one applied the migrations and the others found nothing to do
    assert sorted(len(r.applied) for r in results) == [0, 0, len(migrations.revisions())]
    assert await migrations.pending(engine) == []


async def test_a_database_made_before_migrations_is_adopted_with_its_data(
    engine: AsyncEngine,
) -> None:
    # Given a database made by metadata.create_all, with a token, clusters and a tombstone
    await _create_all(engine)
    secret = await factories.token(engine, Permission.ADMIN, name="old-admin")
    ids = await factories.insert(engine, [factories.cluster(node_count=4) for _ in range(3)])
    await factories.remove(engine, ids[1])
    assert await migrations.pending(engine) == migrations.revisions()

    # When it is upgraded
    done = await migrations.upgrade(engine)

    # Then it was stamped as the baseline, not recreated: the rows are all there
    assert done.adopted
    assert BASELINE not in done.applied
    assert await migrations.pending(engine) == []
    async with read_transaction(engine) as conn:
        query = select(clusters.c.id, clusters.c.removed_at).order_by(clusters.c.id)
        rows = (await conn.execute(query)).all()
        digests = (await conn.execute(select(api_tokens.c.secret_digest))).scalars().all()
        assert (await conn.run_sync(_differences)) == []
    assert [(i, removed is not None) for i, removed in rows] == [
        (ids[0], False),
        (ids[1], True),
        (ids[2], False),
    ]
    assert digests == [digest(secret)]


async def test_an_older_pre_migration_database_gets_the_tables_and_indexes_added_since(
    engine: AsyncEngine,
) -> None:
    # Given a database made before service_keys and the keyset indexes existed
    await _create_all(engine)
    await _execute(engine, "DROP TABLE service_keys", "DROP INDEX ix_clusters_live_provider_id")

    # When it is upgraded, then it is adopted with exactly the models' schema
    assert (await migrations.upgrade(engine)).adopted
    assert await _drift(engine) == []
    assert "service_keys" in await _table_names(engine)


async def test_a_pre_migration_database_that_differs_is_refused_and_left_untouched(
    engine: AsyncEngine,
) -> None:
    # Given a database made before migrations whose clusters have a column the models lack
    await _create_all(engine)
    await _execute(engine, "ALTER TABLE clusters ADD COLUMN colour VARCHAR(10)")

    # When it is upgraded, then it is refused with the difference named
    with pytest.raises(SchemaError, match="colour"):
        await migrations.upgrade(engine)

    # And nothing was written: no version table, still the extra column
    assert "alembic_version" not in await _table_names(engine)
    assert "colour" in await _column_names(engine, "clusters")


async def test_a_database_migrated_by_a_newer_version_is_refused(engine: AsyncEngine) -> None:
    # Given a database at a revision this version does not know
    await migrations.upgrade(engine)
    await _execute(engine, "UPDATE alembic_version SET version_num = 'ffff_future'")

    # Then neither pending nor upgrade pretends to understand it
    with pytest.raises(SchemaError, match="ffff_future"):
        await migrations.pending(engine)
    with pytest.raises(SchemaError, match="ffff_future"):
        await migrations.upgrade(engine)


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(migrations.alembic_config(connection), revision)

    return run


async def _old_token(conn: AsyncConnection, name: str, *permissions: Permission) -> int:
    """A token row as revision 0001 stored it (no binding); its id."""
    values = {
        "name": name,
        "permissions": sorted(str(p) for p in permissions),
        "secret_digest": digest(name),
        "created_at": datetime.now(UTC),
    }
    inserted = await conn.execute(insert(api_tokens).values(values).returning(api_tokens.c.id))
    token_id: int = inserted.scalar_one()
    return token_id


async def _old_cluster(
    conn: AsyncConnection, name: str, owner: int, *, removed: bool = False
) -> None:
    values = new_cluster(factories.cluster(name, node_count=0), datetime.now(UTC), owner)
    values["removed_at"] = datetime.now(UTC) if removed else None
    await conn.execute(insert(clusters).values(values))


async def test_every_controller_token_of_an_older_database_is_bound_to_the_names_it_registered(
    engine: AsyncEngine,
) -> None:
    # Given a database at the revision before bindings, where any controller reported any name
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_to("0001"))
    async with write_transaction(engine) as conn:
        eu = await _old_token(conn, "eu", Permission.CONTROLLER)
        await _old_token(conn, "idle", Permission.CONTROLLER)
        admin = await _old_token(conn, "admin", Permission.ADMIN)
        both = await _old_token(conn, "both", Permission.ADMIN, Permission.CONTROLLER)
        await _old_cluster(conn, "we*rd", eu)
        await _old_cluster(conn, "prod-eu", eu)
        await _old_cluster(conn, "decommissioned", eu, removed=True)
        await _old_cluster(conn, "made-by-admin", admin)
        await _old_cluster(conn, "made-by-both", both)
    assert (await migrations.pending(engine))[0] == "0002"

    # When it is upgraded
    assert (await migrations.upgrade(engine)).applied[0] == "0002"

    # Then each Controller token is bound to exactly the live names it registered, as names
    listed = {t.name: t.binding for t in await _tokens(engine)}
    assert listed == {"admin": [], "both": [], "eu": ["prod-eu", "we[*]rd"], "idle": []}
    eu_caller = await _principal(engine, "eu")
    assert eu_caller.may_report("prod-eu")
    assert eu_caller.may_report("we*rd")
    assert not eu_caller.may_report("weXrd")  # the `*` of a registered name is no pattern
    assert not eu_caller.may_report("decommissioned")
    assert not eu_caller.may_report("made-by-admin")
    assert not (await _principal(engine, "idle")).may_report("prod-eu")
    assert (await _principal(engine, "both")).may_report("anything")
    # And the schema is the models'
    assert await _drift(engine) == []


async def _tokens(engine: AsyncEngine) -> list[TokenInfo]:
    async with read_transaction(engine) as conn:
        return await tokens.list_all(conn)


async def _principal(engine: AsyncEngine, name: str) -> Principal:
    async with read_transaction(engine) as conn:
        found = await tokens.find_active(conn, digest(name), datetime.now(UTC))
    assert found is not None
    return found[0]


async def test_the_summary_rows_are_counted_per_cell_when_an_older_database_is_upgraded(
    engine: AsyncEngine,
) -> None:
    # Given a database at the revision before cells, with live and removed clusters and nodes
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_to("0004"))
    now = datetime.now(UTC)
    states = [
        factories.cluster("a", 3, provider="aws"),
        factories.cluster("b", 2, provider="gcp", status=ControllerStatus.STOPPED),
        factories.cluster("c", 4, provider="aws", status=ControllerStatus.STOPPED),
        factories.cluster("gone", 5, provider="gcp"),
    ]
    async with write_transaction(engine) as conn:
        for state in states:
            values = new_cluster(state, now, None)
            values["removed_at"] = now if state.name == "gone" else None
            added = await conn.execute(insert(clusters).values(values).returning(clusters.c.id))
            cluster_id = added.scalar_one()
            for node in state.nodes:
                await conn.execute(insert(nodes).values(new_node(node, cluster_id, now)))

    # When it is upgraded
    assert (await migrations.upgrade(engine)).applied == ("0005",)

    # Then every summary answered from the cells equals the count from the rows
    cells = [
        ClusterFilter(),
        ClusterFilter(providers=("aws",)),
        ClusterFilter(controller_statuses=("stopped",)),
        ClusterFilter(providers=("gcp",), controller_statuses=("running",)),
    ]
    async with read_transaction(engine) as conn:
        for where in cells:
            assert await summary(conn, where, now) == await counted(conn, where, now), where
        assert (await summary(conn, ClusterFilter(), now)).nodes == 9  # not the removed one's
    assert await _drift(engine) == []
