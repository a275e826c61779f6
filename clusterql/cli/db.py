"""`clusterql db upgrade | copy`: schema migrations, and a whole database copied into a new one."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping

from rich.progress import TaskID

from clusterql.cli.common import CliError, database, progress, settings_from, shown_url
from models import migrations
from models.copying import CopyRefused, CopySummary, copy_database


async def _upgrade(url: str) -> migrations.Upgrade:
    async with database(url, migrate=None) as engine:
        return await migrations.upgrade(engine)


def upgrade(args: argparse.Namespace) -> int:
    done = asyncio.run(_upgrade(settings_from(args).database_url))
    if done.adopted:
        baseline = migrations.BASELINE
        described = f"{baseline} ({migrations.title(baseline)})"
        print(f"adopted a database made before migrations as {described}")
    for revision in done.applied:
        print(f"applied {revision} ({migrations.title(revision)})")
    if not done.applied and not done.adopted:
        print(f"the database is up to date (revision {migrations.head()})")
    return 0


class _CopyBar:
    """`db copy`'s progress: one bar per table, on stderr, shown once the copy has begun."""

    def __init__(self) -> None:
        self._progress = progress()
        self._tasks: dict[str, TaskID] = {}

    def start(self, totals: Mapping[str, int]) -> None:
        self._progress.start()
        for table, total in totals.items():
            self._tasks[table] = self._progress.add_task(f"copying {table}", total=total)

    def advance(self, table: str, rows: int) -> None:
        self._progress.advance(self._tasks[table], rows)

    def stop(self) -> None:
        if self._tasks:
            self._progress.stop()


async def _copy(source_url: str, target_url: str) -> CopySummary:
    bar = _CopyBar()
    async with (
        database(source_url, migrate=None) as source,
        database(target_url, migrate=None) as target,
    ):
        try:
            return await copy_database(source, target, bar)
        except migrations.MigrationsPending as exc:
            upgrade = f"clusterql db upgrade --database-url {shown_url(source_url)}"
            raise CliError(f"the source: {exc}; run `{upgrade}` first") from None
        except CopyRefused as exc:
            raise CliError(str(exc)) from None
        finally:
            bar.stop()


def copy(args: argparse.Namespace) -> int:
    summary = asyncio.run(_copy(args.source, args.target))
    rows = summary.rows
    print(
        f"copied {rows['api_tokens']} tokens, {rows['clusters']} clusters "
        f"({summary.removed_clusters} of them removed), {rows['nodes']} nodes and "
        f"{rows['service_keys']} service keys into {shown_url(args.target)}, every id kept"
    )
    return 0
