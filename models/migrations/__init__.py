"""Schema migrations (Alembic), run from code on our async engines.

`upgrade(engine)` brings a database to the newest revision in one transaction, `pending(engine)`
lists the revisions it lacks. The revisions live in `versions/`, generated from the models by
`alembic revision --autogenerate` (see alembic.ini) and reviewed; CI checks that a migrated
database has exactly the models' schema.

Several processes may start at once: PostgreSQL's migrations run under a transaction-level
advisory lock, SQLite's under its write lock (`BEGIN IMMEDIATE`), so one migrates and the others
then find nothing to do. SQLite rebuilds a table to alter it (`render_as_batch`): foreign keys are
off meanwhile, or dropping the old `clusters` would delete every node through ON DELETE CASCADE,
and `PRAGMA foreign_key_check` must find nothing before the commit
(https://www.sqlite.org/lang_altertable.html#otheralter).

A database made before migrations existed (tables made by `metadata.create_all`, no
`alembic_version`) is adopted: stamped as the baseline, upgraded, given the tables and indexes
added to the models since it was made (`create_all` never added them to existing databases), then
compared with the models; any other difference refuses it, and the transaction leaves it untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Index, inspect, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.sql.sqltypes import AutoString

from models.engine import for_writes
from models.tables import UtcDateTime, metadata

BASELINE = "0001"
DEFAULT_URL = "sqlite+aiosqlite:///./clusterql.db"
VERSION_TABLE = "alembic_version"
SCRIPT_LOCATION = "models:migrations"
# Every clusterql process that migrates takes this PostgreSQL advisory lock ("clustr" in ASCII).
LOCK_KEY = 0x636C75737472


class SchemaError(Exception):
    """The database's schema is not one this version of clusterql can use or adopt."""


class MigrationsPending(SchemaError):
    """The database lacks migrations, and the caller asked not to apply them."""

    def __init__(self, revisions: Sequence[str]) -> None:
        super().__init__(f"the database lacks schema migrations ({', '.join(revisions)})")
        self.revisions = tuple(revisions)


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What `upgrade` did: the revisions it applied, oldest first, and whether it adopted a
    database made before migrations existed."""

    applied: tuple[str, ...]
    adopted: bool = False


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def context_options(backend: str) -> dict[str, Any]:
    """How env.py configures Alembic, for `backend` ("sqlite" or "postgresql")."""
    return {
        "target_metadata": metadata,
        "render_as_batch": backend == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
    }


def _render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations are frozen history: they name plain SQLAlchemy types, never our models' classes
    # (same DDL: UtcDateTime is a DATETIME / TIMESTAMP WITHOUT TIME ZONE, AutoString a VARCHAR).
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime()"
    if kind == "type" and isinstance(obj, AutoString):
        return "sa.String()" if obj.length is None else f"sa.String(length={obj.length})"
    if kind == "type" and isinstance(obj, JSONB):  # not JSONB(astext_type=Text()): same type
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    return False


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [r.revision for r in reversed(list(_script().walk_revisions()))]


def head() -> str:
    """The newest revision: where `upgrade` brings every database."""
    newest = _script().get_current_head()
    assert newest is not None, "no revision in models/migrations/versions"
    return newest


def title(revision: str) -> str:
    """The one-line description of `revision`, e.g. "initial schema"."""
    found = _script().get_revision(revision)
    return found.doc if found is not None else revision


async def pending(engine: AsyncEngine) -> list[str]:
    """The revisions not applied to the database, oldest first (all of them when it is empty)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_pending)


async def require_current(engine: AsyncEngine) -> None:
    """Raise `MigrationsPending` unless every migration has been applied."""
    waiting = await pending(engine)
    if waiting:
        raise MigrationsPending(waiting)


async def upgrade(engine: AsyncEngine) -> Upgrade:
    """Apply every pending revision, in one transaction; a no-op when there is none."""
    async with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            # Each statement sees what other migrators committed before it (after the lock).
            await conn.execution_options(isolation_level="READ COMMITTED")
            async with conn.begin():
                return await conn.run_sync(migrate)
        await conn.run_sync(_sqlite_foreign_keys_off)  # before BEGIN: inside, it is a no-op
        try:
            await for_writes(conn)
            async with conn.begin():
                done = await conn.run_sync(migrate)
                await conn.run_sync(_check_foreign_keys)
            return done
        finally:
            # A fresh connection next time, with the PRAGMAs of models.engine (foreign keys on).
            await conn.invalidate()


def migrate(connection: Connection) -> Upgrade:
    """Bring the schema to the newest revision inside the caller's transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    config = alembic_config(connection)
    unversioned = _is_unversioned(connection)
    todo = _pending(connection)
    try:
        if unversioned:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
    except CommandError as exc:
        raise SchemaError(str(exc)) from None
    if unversioned:
        _complete_and_check(connection)
        return Upgrade(applied=tuple(r for r in todo if r != BASELINE), adopted=True)
    return Upgrade(applied=tuple(todo))


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _pending(connection: Connection) -> list[str]:
    script = _script()
    heads = MigrationContext.configure(connection).get_current_heads()
    try:
        applied = {r.revision for head in heads for r in script.iterate_revisions(head, "base")}
    except (CommandError, RevisionError):
        raise SchemaError(
            f"the database is at revision {', '.join(heads)}, which this version of clusterql "
            "does not know: a newer version migrated it"
        ) from None
    return [r for r in revisions() if r not in applied]


def _is_unversioned(connection: Connection) -> bool:
    names = set(inspect(connection).get_table_names())
    return VERSION_TABLE not in names and bool(names & set(metadata.tables))


def _complete_and_check(connection: Connection) -> None:
    metadata.create_all(connection)  # tables added to the models after the database was made
    for diff in _differences(connection):
        if isinstance(diff, tuple) and diff[0] == "add_index" and isinstance(diff[1], Index):
            diff[1].create(connection)
    left = _differences(connection)
    if left:
        raise SchemaError(
            "the database was made before migrations and its tables differ from the models ("
            + "; ".join(_describe(diff) for diff in left)
            + "): copy its data into a new database instead"
        )


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _describe(diff: Any) -> str:
    """A schema difference from `compare_metadata` in a few words, e.g. "remove_column nodes x"."""
    first: Sequence[Any] = diff[0] if isinstance(diff, list) else diff
    words = [str(first[0])]
    for item in first[1:]:
        name = item if isinstance(item, str) else getattr(item, "name", None)
        if isinstance(name, str):
            words.append(name)
    return " ".join(words[:4])


def _sqlite_foreign_keys_off(connection: Connection) -> None:
    cursor = connection.connection.cursor()  # the DBAPI connection: no BEGIN is emitted
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise SchemaError(f"a migration broke {len(broken)} foreign key(s), e.g. {broken[0]}")
