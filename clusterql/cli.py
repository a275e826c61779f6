"""The `clusterql` command line (SPEC §9): serve, token, seed, schema, simulate, db, --version.

Flags override settings by setting their `CLUSTERQL_*` environment variable, so that `Settings`
stays the one source of configuration, also in the worker processes uvicorn starts.
Mistakes of the user end in one line on stderr and exit code 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import random
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql import demo, simulate
from clusterql.settings import Settings
from models import migrations, tokens
from models.copying import CopyRefused, CopySummary, copy_database
from models.engine import create_engine, read_transaction, write_transaction
from models.errors import DomainError
from models.limits import MAX_NODES_PER_REPORT
from models.seeding import insert_clusters
from models.tokens import Permission, TokenInfo

SEED_CHUNK = 1_000  # clusters per write transaction: short lock holds, few commits
MAX_NODES_PER_CLUSTER = MAX_NODES_PER_REPORT
LOG_LEVELS = ("debug", "info", "warning", "error")
_ENV = {
    "database_url": "CLUSTERQL_DATABASE_URL",
    "host": "CLUSTERQL_HOST",
    "port": "CLUSTERQL_PORT",
    "workers": "CLUSTERQL_WORKERS",
    "log_level": "CLUSTERQL_LOG_LEVEL",
    "migrate": "CLUSTERQL_MIGRATE",
}
UPGRADE_HINT = (
    "run `clusterql db upgrade` first, or let serve migrate "
    "(without --no-migrate or CLUSTERQL_MIGRATE=false)"
)


class CliError(Exception):
    """A mistake the user can fix; its message is printed as is."""


# ---------------------------------------------------------------- settings and the database


def _settings(args: argparse.Namespace) -> Settings:
    """`Settings` from the environment, after the flags given have overridden their variables."""
    for field, variable in _ENV.items():
        value = getattr(args, field, None)
        if value is not None:
            os.environ[variable] = str(value)
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        raise CliError(f"invalid {_ENV.get(field, field)}: {error['msg']}") from None


def _database_error(exc: BaseException) -> CliError:
    """One line about a database failure (SQLAlchemy's own messages span several)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = str(cause).splitlines()
    return CliError(f"database error: {lines[0] if lines else type(cause).__name__}")


@asynccontextmanager
async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `url`, disposed on exit; database failures become one-line errors."""
    try:
        engine = create_engine(url)
    except ModuleNotFoundError as exc:
        raise CliError(f"the database driver is not installed: {exc}") from None
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    try:
        yield engine
    except (SQLAlchemyError, OSError) as exc:
        # aiosqlite's worker thread answers a failed connect once more after the error reached
        # us; if asyncio.run has closed the loop by then, the thread prints a traceback
        # (omnilib/aiosqlite#241). Give it a moment while the loop still runs.
        await asyncio.sleep(0.1)
        raise _database_error(exc) from None
    except migrations.SchemaError as exc:
        raise CliError(str(exc)) from None
    finally:
        await engine.dispose()


@asynccontextmanager
async def _database(url: str, migrate: bool = True) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` whose schema is current: migrated, or else checked (`migrate=False`)."""
    async with _engine(url) as engine:
        if migrate:
            await migrations.upgrade(engine)
        else:
            try:
                await migrations.require_current(engine)
            except migrations.MigrationsPending as exc:
                raise CliError(f"{exc}: {UPGRADE_HINT}") from None
        yield engine


def _shown(when: datetime | None) -> str:
    return "-" if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- token


async def _create_token(
    url: str, name: str, permissions: frozenset[Permission], expires_in_days: int | None
) -> str:
    now = datetime.now(UTC)
    expires = now + timedelta(days=expires_in_days) if expires_in_days else None
    async with _database(url) as engine:
        return await tokens.issue(engine, name, permissions, now=now, expires_at=expires)


def token_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    permissions = frozenset(args.permission)
    print(
        asyncio.run(
            _create_token(settings.database_url, args.name, permissions, args.expires_in_days)
        )
    )
    return 0


async def _list_tokens(url: str) -> list[TokenInfo]:
    async with _database(url) as engine, read_transaction(engine) as conn:
        return await tokens.list_all(conn)


def token_table(tokens: Sequence[TokenInfo]) -> str:
    """Tokens as aligned plain text: readable in a terminal, easy to grep in a script."""
    rows = [("NAME", "PERMISSIONS", "CREATED", "EXPIRES", "REVOKED", "LAST USED")]
    rows += [
        (
            t.name,
            ",".join(t.permissions),
            _shown(t.created_at),
            _shown(t.expires_at),
            _shown(t.revoked_at),
            _shown(t.last_used_at),
        )
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def token_list(args: argparse.Namespace) -> int:
    tokens = asyncio.run(_list_tokens(_settings(args).database_url))
    print(
        token_table(tokens) if tokens else "no tokens yet: create one with `clusterql token create`"
    )
    return 0


async def _revoke_token(url: str, name: str) -> None:
    async with _database(url) as engine, write_transaction(engine) as conn:
        await tokens.revoke(conn, name, datetime.now(UTC))


def token_revoke(args: argparse.Namespace) -> int:
    asyncio.run(_revoke_token(_settings(args).database_url, args.name))
    print(f"token {args.name!r} revoked")
    return 0


# ---------------------------------------------------------------- seed


def _progress() -> Progress:
    # On stderr, so that stdout stays clean; rich draws no live bar when stderr is not a TTY.
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


async def _seed(url: str, run_id: str, clusters: int, nodes_per_cluster: int) -> None:
    rng = random.Random(run_id)
    async with _database(url) as engine:
        with _progress() as progress:
            task = progress.add_task("seeding clusters", total=clusters)
            for start in range(0, clusters, SEED_CHUNK):
                names = [
                    f"seed-{run_id}-{n + 1}"
                    for n in range(start, min(start + SEED_CHUNK, clusters))
                ]
                now = datetime.now(UTC)
                states = demo.synthetic_clusters(rng, names, nodes_per_cluster, now)
                try:
                    async with write_transaction(engine) as conn:
                        await insert_clusters(conn, states, now)
                except IntegrityError:
                    raise CliError(
                        f"a cluster named like seed-{run_id}-* exists already; run seed again"
                    ) from None
                progress.advance(task, len(names))


def seed(args: argparse.Namespace) -> int:
    settings = _settings(args)
    run_id = secrets.token_hex(4)
    started = time.perf_counter()
    asyncio.run(_seed(settings.database_url, run_id, args.clusters, args.nodes_per_cluster))
    elapsed = time.perf_counter() - started
    print(
        f"seeded {args.clusters} clusters with {args.nodes_per_cluster} nodes each "
        f"(names seed-{run_id}-1 to seed-{run_id}-{args.clusters}) in {elapsed:.1f} s"
    )
    return 0


# ---------------------------------------------------------------- schema


def schema(args: argparse.Namespace) -> int:
    from graph.schema import schema as graphql_schema  # imported here: only this command needs it

    print(graphql_schema.as_str())
    return 0


# ---------------------------------------------------------------- serve


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server listening on `host`:`port`."""
    if host in ("0.0.0.0", ""):  # noqa: S104 (a wildcard is reachable on loopback)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True, slots=True)
class DemoAccess:
    """What `serve --demo` made: the clusters it added and a fresh Admin token."""

    added: int
    token_name: str
    secret: str


def demo_banner(url: str, access: DemoAccess, database: str) -> str:
    """What `serve --demo` prints: the token, GraphiQL and a curl ready to paste."""
    fleet = (
        f"added the demo fleet ({access.added} clusters) to {database}"
        if access.added
        else f"{database} already holds clusters: kept them, added no demo fleet"
    )
    secret = access.secret
    return "\n".join(
        [
            f"clusterql demo: {fleet}",
            f"Admin token (shown only once): {secret}",
            f"  (token name {access.token_name}; `clusterql token revoke NAME` ends it)",
            f'GraphiQL: {url}/graphql  (headers: {{"Authorization": "Bearer {secret}"}})',
            "Try the REST API:",
            f"  curl -sS -X POST {url}/runtime/api/v1/clusters \\",
            f"    -H 'Authorization: Bearer {secret}' \\",
            "    -H 'Content-Type: application/json' \\",
            '    -d \'{"limit": 5, "return_nodes": true}\'',
        ]
    )


async def _prepare(url: str, with_demo: bool, migrate: bool = True) -> DemoAccess | None:
    """Migrate (or check) the schema; with the demo, fill an empty database, make an Admin token."""
    async with _database(url, migrate) as engine:
        if not with_demo:
            return None
        now = datetime.now(UTC)
        added = await demo.load_demo(engine, now)
        name = f"demo-admin-{now:%Y%m%dT%H%M%S.%fZ}"
        secret = await tokens.issue(engine, name, [Permission.ADMIN], now=now)
        return DemoAccess(added, name, secret)


class _NoColorMessage(logging.Filter):
    """Drops uvicorn's `color_message` extra: JSON lines carry the plain message only."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def log_config(level: str) -> dict[str, Any]:
    """JSON logs for uvicorn and the app, as a dictConfig that every worker process applies."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"plain": {"()": f"{__name__}._NoColorMessage"}},
        "formatters": {"json": {"()": "clusterql.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["plain"],
            },
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def serve(args: argparse.Namespace) -> int:
    import uvicorn  # imported here: the other commands do without it

    settings = _settings(args)
    if args.demo and settings.port == 0:
        raise CliError("--demo needs a fixed port to print its URLs: give --port")
    access = asyncio.run(_prepare(settings.database_url, args.demo, settings.migrate))
    if access is not None:
        database = make_url(settings.database_url).render_as_string(hide_password=True)
        print(demo_banner(base_url(settings.host, settings.port), access, database), flush=True)
    uvicorn.run(
        "clusterql.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


# ---------------------------------------------------------------- db


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _upgrade(url: str) -> migrations.Upgrade:
    async with _engine(url) as engine:
        return await migrations.upgrade(engine)


def db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    done = asyncio.run(_upgrade(settings.database_url))
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
        self._progress = _progress()
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
    async with _engine(source_url) as source, _engine(target_url) as target:
        try:
            return await copy_database(source, target, bar)
        except migrations.MigrationsPending as exc:
            upgrade = f"clusterql db upgrade --database-url {_shown_url(source_url)}"
            raise CliError(f"the source: {exc}; run `{upgrade}` first") from None
        except CopyRefused as exc:
            raise CliError(str(exc)) from None
        finally:
            bar.stop()


def db_copy(args: argparse.Namespace) -> int:
    summary = asyncio.run(_copy(args.source, args.target))
    rows = summary.rows
    print(
        f"copied {rows['api_tokens']} tokens, {rows['clusters']} clusters "
        f"({summary.removed_clusters} of them removed), {rows['nodes']} nodes and "
        f"{rows['service_keys']} service keys into {_shown_url(args.target)}, every id kept"
    )
    return 0


def _add_db(commands: Any) -> None:
    parser = commands.add_parser("db", help="migrate the database schema, copy a database")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply pending schema migrations and list them")
    _database_flag(upgrade)
    upgrade.set_defaults(run=db_upgrade)
    copy = actions.add_parser(
        "copy",
        help="copy every row of a database into a new, empty one (e.g. SQLite to PostgreSQL), "
        "keeping every id",
    )
    copy.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the database to copy (read only)",
    )
    copy.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URL",
        help="an empty database, migrated first",
    )
    copy.set_defaults(run=db_copy)


# ---------------------------------------------------------------- the parser


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: {bounds}")
        return value

    return parse


def _permission(text: str) -> Permission:
    for permission in Permission:
        if text.lower() == permission.value.lower():
            return permission
    raise argparse.ArgumentTypeError(f"{text!r} is not a permission: use Admin or Controller")


def _token_name(text: str) -> str:
    if not text.strip() or len(text) > 100 or not text.isprintable():
        raise argparse.ArgumentTypeError("a token name is 1 to 100 printable characters")
    return text


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy async URL (env CLUSTERQL_DATABASE_URL; "
        "default sqlite+aiosqlite:///./clusterql.db)",
    )


def _add_serve(commands: Any) -> None:
    parser = commands.add_parser("serve", help="create or migrate the database, then serve")
    parser.add_argument("--host", help="address to listen on (env CLUSTERQL_HOST; 127.0.0.1)")
    parser.add_argument("--port", type=_bounded(0, 65535), help="(env CLUSTERQL_PORT; 8000)")
    parser.add_argument(
        "--workers", type=_bounded(1, 64), help="worker processes (env CLUSTERQL_WORKERS; 1)"
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="(env CLUSTERQL_LOG_LEVEL; info)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="fill an empty database with a demo fleet and print an Admin token and examples",
    )
    parser.add_argument(
        "--migrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply pending schema migrations before serving; --no-migrate refuses to start "
        "while some are pending (env CLUSTERQL_MIGRATE; default: migrate)",
    )
    _database_flag(parser)
    parser.set_defaults(run=serve)


def _add_token(commands: Any) -> None:
    parser = commands.add_parser("token", help="create, list or revoke API tokens")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print its secret (only)")
    create.add_argument("--name", required=True, type=_token_name, help="unique token name")
    create.add_argument(
        "--permission",
        required=True,
        action="append",
        type=_permission,
        metavar="Admin|Controller",
        help="a permission of the token (repeat for both)",
    )
    create.add_argument(
        "--expires-in-days", type=_bounded(1, 36_500), metavar="N", help="default: never"
    )
    create.set_defaults(run=token_create)
    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.set_defaults(run=token_list)
    revoke = actions.add_parser("revoke", help="revoke a token: it fails from its next request")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(run=token_revoke)
    for sub in (create, listing, revoke):
        _database_flag(sub)


def _add_seed(commands: Any) -> None:
    parser = commands.add_parser("seed", help="insert bulk synthetic clusters")
    parser.add_argument("--clusters", required=True, type=_bounded(1), metavar="N")
    parser.add_argument(
        "--nodes-per-cluster",
        type=_bounded(0, MAX_NODES_PER_CLUSTER),
        default=20,
        metavar="M",
        help="default: 20",
    )
    _database_flag(parser)
    parser.set_defaults(run=seed)


def run_simulation(args: argparse.Namespace) -> int:
    stats = asyncio.run(
        simulate.run(
            args.url,
            args.token,
            controllers=args.controllers,
            interval=args.interval,
            duration=args.duration,
            prefix=args.prefix,
        )
    )
    latencies = sorted(stats.latencies)
    p50 = f"{latencies[len(latencies) // 2] * 1000:.1f} ms" if latencies else "n/a"
    print(
        f"reports acknowledged {stats.acknowledged}, refused {stats.refused}, "
        f"failed {stats.failed}; median latency {p50}"
    )
    for error in stats.errors[:5]:
        print(f"  {error}", file=sys.stderr)
    return 0 if stats.refused == stats.failed == 0 else 1


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def _add_simulate(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate", help="fake controllers reporting changing clusters to a running server"
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="a Controller (or Admin) token")
    parser.add_argument("--controllers", type=_bounded(1, 10_000), default=10, metavar="K")
    parser.add_argument(
        "--interval", type=_positive_float, default=5.0, metavar="S", help="seconds between reports"
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        metavar="D",
        help="seconds; default: forever",
    )
    parser.add_argument("--prefix", default="sim", help="cluster names are PREFIX-NNN")
    parser.set_defaults(run=run_simulation)


def installed_version() -> str:
    """The version of the installed distribution (what pip installed), not of a source tree."""
    try:
        return importlib.metadata.version("clusterql")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clusterql",
        description="Every monitored cluster and the health of its nodes, over GraphQL and REST.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_token(commands)
    _add_seed(commands)
    commands.add_parser("schema", help="print the GraphQL schema (SDL)").set_defaults(run=schema)
    _add_simulate(commands)
    _add_db(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
    except (CliError, DomainError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
