"""What the benchmarks share: seeded databases and tokens, a server in a subprocess, the machine.

The scripts run as `python bench/<name>.py`, which puts bench/ on the import path: they import
this module as `support`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from models import migrations, tokens
from models.engine import create_engine, write_transaction
from models.records import ClusterState, ControllerStatus, NodeState, NodeStatus
from models.seeding import insert_clusters
from models.tokens import Permission, digest, new_secret

if TYPE_CHECKING:
    from rich.console import Console
    from starlette.types import ASGIApp

# --- seeding ---------------------------------------------------------------------------------

# Node statuses and their weights. Most clusters are healthy; one in five has trouble.
HEALTHY = {"monitored_with_sensor": 80, "monitored": 14, "failed": 2, "disabled": 4}
TROUBLED = {
    "monitored_with_sensor": 40,
    "monitored": 15,
    "failed": 20,
    "installation_failed": 15,
    "disabled": 10,
}
_REGIONS = {
    "aws": ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1"],
    "gcp": ["us-central1", "europe-west4", "asia-east1"],
    "azure": ["eastus", "westeurope", "southeastasia"],
    "kubernetes": ["dc-paris", "dc-frankfurt"],
}


def _node(
    rng: random.Random, i: int, regions: list[str], weights: dict[str, int], now: datetime
) -> NodeState:
    status = NodeStatus(rng.choices(list(weights), list(weights.values()))[0])
    installed = status in (NodeStatus.MONITORED_WITH_SENSOR, NodeStatus.FAILED)
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    region = rng.choice(regions)
    return NodeState(
        name=f"node-{i:02d}",
        hostname=f"ip-{ip.replace('.', '-')}",
        status=status,
        sensor_installed=installed,
        sensor_version=f"2.{rng.randrange(4)}.{rng.randrange(10)}" if installed else "",
        sensor_last_updated=now - timedelta(seconds=rng.randrange(86_400)) if installed else None,
        region=region,
        architecture=rng.choices(["amd64", "arm64"], [4, 1])[0],
        internal_dns=f"ip-{ip.replace('.', '-')}.{region}.internal",
        internal_ip=ip,
    )


def _cluster(rng: random.Random, n: int, nodes: int, now: datetime) -> ClusterState:
    provider = rng.choice(list(_REGIONS))
    regions = rng.sample(_REGIONS[provider], rng.randint(1, 2))
    weights = TROUBLED if rng.random() < 0.2 else HEALTHY
    return ClusterState(
        name=f"{provider}-cluster-{n:05d}",
        provider=provider,
        regions=regions,
        controller_version=f"1.{rng.randrange(8)}.{rng.randrange(20)}",
        controller_status=ControllerStatus.RUNNING
        if rng.random() < 0.95
        else ControllerStatus.STOPPED,
        nodes=[_node(rng, i, regions, weights, now) for i in range(nodes)],
    )


async def seed(url: str, clusters: int, nodes: int, chunk: int = 250) -> str:
    """Create the schema, the clusters and an Admin token; returns the token's secret.

    Always the same data for the same sizes: `clusters` x `nodes` of mixed providers and statuses,
    through `models.seeding.insert_clusters` in chunks inside one write transaction.
    """
    rng = random.Random(20241231)
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        async with write_transaction(engine) as conn:
            for start in range(0, clusters, chunk):
                states = [
                    _cluster(rng, n, nodes, now) for n in range(start, min(start + chunk, clusters))
                ]
                await insert_clusters(conn, states, now)
        async with write_transaction(engine) as conn:
            return await add_token(conn, "bench-admin", Permission.ADMIN, now=now)
    finally:
        await engine.dispose()


async def add_token(
    conn: AsyncConnection,
    name: str,
    permission: Permission,
    *,
    now: datetime | None = None,
    secret: str | None = None,
) -> str:
    """A token with one permission (made now unless `now` says otherwise); returns its secret, a
    new one unless `secret` is given."""
    secret = secret or new_secret()
    await tokens.create(
        conn,
        name=name,
        permissions=frozenset({permission}),
        secret_digest=digest(secret),
        now=now or datetime.now(UTC),
    )
    return secret


@contextlib.contextmanager
def scratch_file(name: str) -> Iterator[Path]:
    """A path named `name` in a new temporary directory, removed on exit with all it holds."""
    with tempfile.TemporaryDirectory(prefix="clusterql-bench-") as tmp:
        yield Path(tmp) / name


# --- a server in a subprocess ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextlib.contextmanager
def server_process(
    command: Callable[[int], list[str]],
    name: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[Server]:
    """Runs `command(port)` for a free port of 127.0.0.1, with `env` added to the environment
    and its output appended to `log` if given; yields once GET /healthz answers 200, stops it on
    exit (SIGTERM, then SIGKILL)."""
    port = free_port()
    output = None if log is None else log.open("ab")
    process = subprocess.Popen(
        command(port),
        env=None if env is None else {**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.2)
        yield Server(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if output is not None:
            output.close()


def clusterql_server(
    database_url: str, workers: int = 1, log: Path | None = None
) -> contextlib.AbstractContextManager[Server]:
    """`clusterql serve --workers N --log-level warning` on `database_url`, on 127.0.0.1; its
    output goes to `log` if given. The rate limit of Admin tokens is raised far past what one
    machine serves (unless CLUSTERQL_RATE_LIMIT_ADMIN says otherwise): the limiter still runs on
    every request, it only never refuses the benchmark's one token."""

    def command(port: int) -> list[str]:
        serve = [sys.executable, "-m", "clusterql.cli", "serve", "--host", "127.0.0.1"]
        return [*serve, "--port", str(port), "--workers", str(workers), "--log-level", "warning"]

    return server_process(
        command,
        f"clusterql serve --workers {workers}",
        env={
            "CLUSTERQL_DATABASE_URL": database_url,
            "CLUSTERQL_RATE_LIMIT_ADMIN": os.environ.get("CLUSTERQL_RATE_LIMIT_ADMIN", "1000000"),
        },
        log=log,
    )


# --- a throwaway PostgreSQL server (scripts/postgres) ----------------------------------------

POSTGRES_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres"


def _postgres(*args: str) -> str:
    done = subprocess.run(
        [str(POSTGRES_SCRIPT), *args], capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"scripts/postgres {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass(frozen=True)
class PostgresServer:
    directory: Path
    url: str  # postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres

    @property
    def log(self) -> Path:
        """The server's log (its stderr)."""
        return self.directory / "server.log"

    @property
    def pid(self) -> int:
        """The postmaster's process id (every backend is one of its children)."""
        return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on 127.0.0.1 (fsync off); removed on exit."""
    directory = _postgres("new")
    try:
        yield PostgresServer(Path(directory), _postgres("url", directory))
    finally:
        _postgres("destroy", directory)


async def create_database(server_url: str, name: str) -> str:
    """A new database `name` on the server of `server_url`; returns its URL."""
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden `--serve DB --port N` of a script whose app `script_server` runs."""
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)


def script_server(script: str, db: Path) -> contextlib.AbstractContextManager[Server]:
    """`python <script> --serve <db> --port N` in a subprocess: the script serves its app on the
    SQLite file `db` with `run_uvicorn` (see `add_serve_arguments`)."""
    return server_process(
        lambda port: [sys.executable, script, "--serve", str(db), "--port", str(port)],
        "the uvicorn server",
    )


def run_uvicorn(app: ASGIApp, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of process `pid` and all its descendants, from /proc (Linux);
    None where that cannot be read."""
    total: float | None = None
    pending = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total = (total or 0.0) + (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            continue
        pending += [int(child) for child in children]
    return total


# --- figures and the machine -----------------------------------------------------------------

PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "aiosqlite",
    "httpx",
    "orjson",
)


def percentile(xs: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile of `xs` (0 < q <= 1): a value that was measured."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(packages: Iterable[str] = PACKAGES, **extra: Any) -> dict[str, Any]:
    """The date, the machine, its load, Python, `extra` and the versions of `packages`."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "load_average": load_average(),
        "python": platform.python_version(),
        **extra,
        "versions": {p: metadata.version(p) for p in packages},
    }


def wide_console(width: int) -> Console:
    """A rich console; piped or redirected, `width` columns wide (not wrapped at 80 columns)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=width)
