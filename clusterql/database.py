"""Opening the database a process serves: migrated at start, or refused while it lacks migrations.

The one place for "migrate or refuse to start", shared by the app's lifespan and every command.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from models import migrations
from models.engine import EngineOptions, create_engine

UPGRADE_HINT = (
    "run `clusterql db upgrade` first, or let serve migrate "
    "(without --no-migrate or CLUSTERQL_MIGRATE=false)"
)


class NotMigrated(RuntimeError):
    """The database lacks migrations, and the process was told not to apply them."""


@asynccontextmanager
async def current_database(
    url: str, options: EngineOptions | None = None, *, migrate: bool = True
) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` whose schema is current, disposed on exit: pending migrations are
    applied, or with `migrate=False` refused (`NotMigrated`, nothing applied)."""
    engine = create_engine(url, options)
    try:
        if migrate:
            await migrations.upgrade(engine)
        else:
            try:
                await migrations.require_current(engine)
            except migrations.MigrationsPending as exc:
                raise NotMigrated(f"{exc}: {UPGRADE_HINT}") from None
        yield engine
    finally:
        await engine.dispose()
