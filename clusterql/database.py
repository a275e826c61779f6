"""The database a process serves: opened migrated, or refused while it lacks migrations (the one
place for "migrate or refuse to start", shared by the app's lifespan and every command), and what
the app's lifespan then holds for its requests (`Resources`, typed where `app.state` is not).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from graph.context import Clock, utc_now
from graph.cursors import CursorCodec
from graph.operation_limits import DEFAULT_LIMITS, OperationLimits
from models import migrations
from models.engine import EngineOptions, create_engine
from models.limits import CONTROLLER_MAX_CLUSTERS, DEFAULT_STALE_AFTER

if TYPE_CHECKING:
    from clusterql.live import Live

UPGRADE_HINT = (
    "run `clusterql db upgrade` first, or let serve migrate "
    "(without --no-migrate or CLUSTERQL_MIGRATE=false)"
)


class NotMigrated(RuntimeError):
    """The database lacks migrations, and the process was told not to apply them."""


@asynccontextmanager
async def current_database(
    url: str, options: EngineOptions | None = None, *, migrate: bool | None = True
) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` whose schema is current, disposed on exit: pending migrations are
    applied, or with `migrate=False` refused (`NotMigrated`, nothing applied); `None` leaves
    the schema as it is (for the commands that migrate it themselves)."""
    engine = create_engine(url, options)
    try:
        if migrate:
            await migrations.upgrade(engine)
        elif migrate is False:
            try:
                await migrations.require_current(engine)
            except migrations.MigrationsPending as exc:
                raise NotMigrated(f"{exc}: {UPGRADE_HINT}") from None
        yield engine
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class Resources:
    """The process's engine (and so its pool), the codec of the cursors its pages hand out,
    what one GraphQL operation may cost, the clock, when a silent cluster is stale, and the
    live updates it serves."""

    engine: AsyncEngine
    cursors: CursorCodec
    limits: OperationLimits = DEFAULT_LIMITS
    controller_max_clusters: int = CONTROLLER_MAX_CLUSTERS  # live clusters per Controller token
    clock: Clock = utc_now
    stale_after: timedelta = DEFAULT_STALE_AFTER
    live: Live | None = None  # the websocket connections and their fan-out (clusterql.live)


def resources(app: Any) -> Resources:
    """The resources of `app` (a Starlette app whose lifespan has started)."""
    found = app.state.resources
    if not isinstance(found, Resources):
        raise RuntimeError("the app's lifespan has not started: no database yet")
    return found
