"""What the commands share: one-line user errors, settings from flags, the database, progress."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.database import NotMigrated, current_database
from clusterql.settings import Settings
from models import migrations
from models.faults import one_line

# The flags that override a setting, each by setting the setting's variable, CLUSTERQL_<FIELD>.
ENVIRONMENT = {
    field: f"CLUSTERQL_{field.upper()}"
    for field in ("database_url", "host", "port", "workers", "log_level", "migrate")
}


class CliError(Exception):
    """A mistake the user can fix; its message is printed as is."""


def settings_from(args: argparse.Namespace) -> Settings:
    """`Settings` from the environment, after the flags given have overridden their variables."""
    for field, variable in ENVIRONMENT.items():
        value = getattr(args, field, None)
        if value is not None:
            os.environ[variable] = str(value)
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        raise CliError(f"invalid {ENVIRONMENT.get(field, field)}: {error['msg']}") from None


@asynccontextmanager
async def one_line_errors() -> AsyncIterator[None]:
    """Database failures and unusable schemas within the block become one-line `CliError`s."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise CliError(f"the database driver is not installed: {exc}") from None
    except (SQLAlchemyError, OSError) as exc:
        # aiosqlite's worker thread answers a failed connect once more after the error reached
        # us; if asyncio.run has closed the loop by then, the thread prints a traceback
        # (omnilib/aiosqlite#241). Give it a moment while the loop still runs.
        await asyncio.sleep(0.1)
        raise CliError(f"database error: {one_line(exc)}") from None
    except (migrations.SchemaError, NotMigrated) as exc:
        raise CliError(str(exc)) from None


@asynccontextmanager
async def database(url: str, *, migrate: bool | None = True) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` whose schema is current (`clusterql.database.current_database`)."""
    async with one_line_errors(), current_database(url, migrate=migrate) as engine:
        yield engine


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def shown_time(when: datetime | None) -> str:
    return "-" if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def progress() -> Progress:
    # On stderr, so that stdout stays clean; rich draws no live bar when stderr is not a TTY.
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
