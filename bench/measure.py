"""What the benchmarks share: a seeded database (the product's own generator, `clusterql.fleet`),
quantiles, CPU time from /proc (`tests.live_server.cpu_seconds`), and the machine they ran on."""

from __future__ import annotations

import contextlib
import math
import os
import platform
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from itertools import islice
from pathlib import Path
from typing import Any

from clusterql.fleet import plausible_fleet
from models import bindings, migrations, tokens
from models.engine import create_engine, write_transaction
from models.seeding import insert_clusters
from models.tokens import Permission
from tests.live_server import cpu_seconds

__all__ = ["cpu_seconds"]  # bench.honest takes it from here

PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "orjson",
)


SEED = 20241231


async def seed(url: str, clusters: int, nodes: int | tuple[int, int], chunk: int = 1000) -> str:
    """Migrate the database at `url`, insert `clusters` plausible clusters (`bench-<n>`, the same
    ones for the same sizes) of `nodes` nodes each, and an Admin token; returns its secret."""
    now = datetime.now(UTC)
    fleet = plausible_fleet(SEED, (f"bench-{n:07d}" for n in range(clusters)), now, nodes)
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        while states := list(islice(fleet, chunk)):
            async with write_transaction(engine) as conn:
                await insert_clusters(conn, states, now)
        return await tokens.issue(engine, "bench-admin", [Permission.ADMIN], now=now)
    finally:
        await engine.dispose()


async def token(url: str, permission: Permission, patterns: Sequence[str] = ()) -> str:
    """A new token of `permission` at `url` (a Controller's bound to the name `patterns`)."""
    engine = create_engine(url)
    try:
        name = f"bench-{permission.value.lower()}-{os.urandom(4).hex()}"
        binding = bindings.binding(list(patterns))
        return await tokens.issue(engine, name, [permission], binding=binding)
    finally:
        await engine.dispose()


def percentile(xs: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile of `xs` (0 < q <= 1): a value that was measured."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
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
        "cpu": _cpu_model(),
        "load_average": load_average(),
        "python": platform.python_version(),
        **extra,
        "versions": {p: metadata.version(p) for p in packages},
    }


def unthrottled(env: dict[str, str]) -> dict[str, str]:
    """A clusterql server's environment with its rate limits raised far past what one machine
    serves (unless the caller's environment says otherwise): the limiter still runs on every
    request, it only never refuses a benchmark's few tokens."""
    raised = {
        "CLUSTERQL_RATE_LIMIT_ADMIN": "1000000",
        "CLUSTERQL_RATE_LIMIT_ADMIN_BURST": "1000000",
        "CLUSTERQL_RATE_LIMIT_CONTROLLER": "1000000",
        "CLUSTERQL_RATE_LIMIT_CONTROLLER_BURST": "1000000",
    }
    return {**{k: os.environ.get(k, v) for k, v in raised.items()}, **env}
