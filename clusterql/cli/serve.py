"""`clusterql serve`: migrate (or check) the database, then serve with uvicorn; `--demo` first
fills an empty database with the demo fleet and prints an Admin token and examples."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from clusterql import fleet
from clusterql.cli.common import CliError, database, settings_from, shown_url
from clusterql.logs import log_config
from clusterql.watch import websocket_url
from models import tokens
from models.tokens import Permission

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess mode reads it


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


DEMO_SUBSCRIPTION = (
    "subscription { clusterChanges { kind clusterId cluster { name failedNodesCount } } }"
)


def demo_banner(url: str, access: DemoAccess, database: str) -> str:
    """What `serve --demo` prints: the token, GraphiQL and a curl ready to paste."""
    summary = (
        f"added the demo fleet ({access.added} clusters, each held by a Controller token bound "
        f"to its name: `clusterql token list`) to {database}"
        if access.added
        else f"{database} already holds clusters: kept them, added no demo fleet"
    )
    secret = access.secret
    return "\n".join(
        [
            f"clusterql demo: {summary}",
            f"Admin token (shown only once): {secret}",
            f"  (token name {access.token_name}; `clusterql token revoke NAME` ends it)",
            f'GraphiQL: {url}/graphql  (headers: {{"Authorization": "Bearer {secret}"}})',
            "Try the REST API:",
            f"  curl -sS -X POST {url}/runtime/api/v1/clusters \\",
            f"    -H 'Authorization: Bearer {secret}' \\",
            "    -H 'Content-Type: application/json' \\",
            '    -d \'{"limit": 5, "return_nodes": true}\'',
            "Watch the fleet change live (a subscription over graphql-transport-ws at "
            f"{websocket_url(url)}):",
            f"  clusterql watch --url {url} --token {secret}",
            "and in another terminal make the demo fleet change:",
            f"  clusterql simulate --url {url} --token {secret} --demo --interval 2",
            f"In GraphiQL, run: {DEMO_SUBSCRIPTION}",
        ]
    )


async def _prepare(url: str, with_demo: bool, migrate: bool = True) -> DemoAccess | None:
    """Migrate (or check) the schema; with the demo, fill an empty database, make an Admin token."""
    async with database(url, migrate=migrate) as engine:
        if not with_demo:
            return None
        now = datetime.now(UTC)
        added = await fleet.load_demo(engine, now)
        name = f"demo-admin-{now:%Y%m%dT%H%M%S.%fZ}"
        secret = await tokens.issue(engine, name, [Permission.ADMIN], now=now)
        return DemoAccess(added, name, secret)


def serve(args: argparse.Namespace) -> int:
    import uvicorn  # imported here: the other commands do without it

    from clusterql.connections import open_files_for, uvicorn_options

    settings = settings_from(args)
    if args.demo and settings.port == 0:
        raise CliError("--demo needs a fixed port to print its URLs: give --port")
    open_files_for(settings)
    access = asyncio.run(_prepare(settings.database_url, args.demo, settings.migrate))
    if access is not None:
        banner = demo_banner(
            base_url(settings.host, settings.port), access, shown_url(settings.database_url)
        )
        print(banner, flush=True)
    with metrics_directory(settings.workers):
        uvicorn.run(
            "clusterql.app:serving_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=log_config(settings.log_level),
            log_level=settings.log_level,
            access_log=False,  # clusterql.access writes one line per request, without its query
            timeout_graceful_shutdown=10,
            **uvicorn_options(settings),
        )
    return 0


@contextmanager
def metrics_directory(workers: int) -> Iterator[None]:
    """The directory where every worker keeps its metrics, for a scrape to add them up
    (`clusterql.metrics`): set in the environment before any worker starts (and before this
    process imports prometheus-client), in a new temporary directory removed afterwards. An
    operator's own PROMETHEUS_MULTIPROC_DIR is used as it is. One worker (uvicorn then serves
    in this very process) keeps them in memory: no files, and each update about half the
    cost of one in a file (measured: 3.4 against 7.8 us for a request's updates)."""
    if os.environ.get(MULTIPROC_DIR) or workers == 1:
        yield
        return
    path = tempfile.mkdtemp(prefix="clusterql-metrics-")
    os.environ[MULTIPROC_DIR] = path
    # One uvicorn process shuts down on SIGTERM, then raises the signal again to exit by it,
    # which would skip the removal: the signal lands here first, and is raised again after it.
    previous = signal.signal(signal.SIGTERM, _terminated)
    terminated = False
    try:
        yield
    except _Terminated:
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(path, ignore_errors=True)
    if terminated:
        signal.raise_signal(signal.SIGTERM)


class _Terminated(BaseException):
    """SIGTERM arrived after uvicorn let go of it."""


def _terminated(_signal: int, _frame: object) -> None:
    raise _Terminated
