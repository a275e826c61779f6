"""Where the time of a GraphQL page with nodes goes: in-process, `schema.execute` plus orjson.

First wall-clock figures without a profiler (the parts timed on their own), then cProfile's self
time grouped by component. cProfile inflates code made of many small calls (graphql-core's
executor, Strawberry's wrappers) more than C code, so trust the wall-clock parts for sizes and
the profile for the ranking inside the executor. SQLite runs in aiosqlite's thread: in the
profile, the main thread's wait for it shows up as the event loop's `select`.

    .venv/bin/python bench/profile_graphql.py [--clusters 1000] [--runs 30] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from read_paths import LIMIT, reference_cluster
from sqlalchemy.ext.asyncio import AsyncEngine
from support import seed

from graph.context import build_context
from graph.cursors import CursorCodec
from graph.scalars import format_timestamp
from graph.schema import schema
from graph.types import Cluster
from models import clusters as clusters_db
from models import listing
from models.engine import create_engine, read_transaction
from models.listing import ClusterFilter, Order, Position
from models.records import ClusterRecord, NodeRecord
from models.tokens import Permission, Principal
from rest_shim.operations import LIST_CLUSTERS, rest_page

ADMIN = Principal(token_id=1, name="bench", permissions=frozenset({Permission.ADMIN}))
NEXT_KEY = "500"

# (component, test on "file:function") in order: the first match wins.
_BUCKETS: list[tuple[str, Callable[[str], bool]]] = [
    (
        "event loop, incl. waiting for aiosqlite's thread",
        lambda k: "select.epoll" in k or ("/asyncio/" in k and "site-packages" not in k),
    ),
    ("SQLAlchemy + aiosqlite (main thread)", lambda k: "sqlalchemy/" in k or "aiosqlite/" in k),
    ("datetime formatting", lambda k: "scalars.py" in k or "datetime.datetime" in k),
    ("from_record object building", lambda k: "graph/types.py" in k or k.startswith("<string>")),
    ("graphql-core execution", lambda k: "graphql/execution/" in k),
    ("graphql-core other (type checks, paths, enums)", lambda k: "graphql/" in k),
    ("Strawberry wrappers", lambda k: "strawberry/" in k),
    ("JSON encoding (orjson)", lambda k: "orjson" in k),
    ("REST reshaping (rest_page)", lambda k: "rest_shim/" in k),
]


def component(key: tuple[str, int, str]) -> str:
    text = f"{key[0]}:{key[2]}"
    for name, test in _BUCKETS:
        if test(text):
            return name
    return "other (builtins: isinstance, getattr, dict ops...)"


async def graphql_page(engine: AsyncEngine) -> bytes:
    context = build_context(engine, CursorCodec(b"profile"), ADMIN, "profile")
    variables = {"limit": LIMIT, "nextKey": NEXT_KEY, "withNodes": True}
    result = await schema.execute(LIST_CLUSTERS, variable_values=variables, context_value=context)
    assert not result.errors, result.errors
    return orjson.dumps({"data": result.data})


async def read_sql(engine: AsyncEngine) -> tuple[list[ClusterRecord], dict[int, list[NodeRecord]]]:
    async with read_transaction(engine) as conn:
        assert await clusters_db.id_assigned(conn, int(NEXT_KEY))
        after = Position(int(NEXT_KEY), int(NEXT_KEY))
        records, _ = await listing.page(conn, ClusterFilter(), Order(), after, LIMIT)
        await listing.count_matching(conn, ClusterFilter())
        by_cluster = await clusters_db.nodes_of(conn, {r.id for r in records})
    return records, by_cluster


def fields(value: Any) -> int:
    """How many fields the executor resolved to produce `value` (list items are not fields)."""
    if isinstance(value, dict):
        return sum(1 + fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(fields(v) for v in value)
    return 0


async def median_ms(run: Callable[[], Awaitable[Any]], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def wall_clock(engine: AsyncEngine, runs: int) -> tuple[dict[str, float], int]:
    """Medians (ms) of the page and of its parts timed alone; and how many fields it resolves."""
    records, by_cluster = await read_sql(engine)
    stamps = [r.monitored_at for r in records] + [r.controller_last_updated for r in records]
    for nodes in by_cluster.values():
        stamps += [n.monitored_at for n in nodes]
        stamps += [n.sensor_last_updated for n in nodes if n.sensor_last_updated is not None]
    context = build_context(engine, CursorCodec(b"profile"), ADMIN, "profile")
    variables = {"limit": LIMIT, "nextKey": NEXT_KEY, "withNodes": True}
    data = (await schema.execute(LIST_CLUSTERS, variables, context)).data
    assert data is not None

    async def build_objects() -> None:
        for r in records:  # nodes are served as their records: no object to build
            Cluster.from_record(r)

    async def format_all() -> None:
        for s in stamps:
            format_timestamp(s)

    async def encode() -> None:
        orjson.dumps({"data": data})

    async def reference_dicts() -> None:
        orjson.dumps([reference_cluster(r, by_cluster[r.id]) for r in records])

    async def reshape() -> None:
        rest_page(data["clusters"])

    parts = {
        "graphql page (execute + orjson)": await median_ms(lambda: graphql_page(engine), runs),
        "  of which SQL (same statements, own transaction)": await median_ms(
            lambda: read_sql(engine), runs
        ),
        "  of which from_record (100 Cluster)": await median_ms(build_objects, runs),
        f"  of which format_timestamp x {len(stamps)}": await median_ms(format_all, runs),
        "  of which orjson.dumps of the result": await median_ms(encode, runs),
        "reference: dicts + orjson, no SQL": await median_ms(reference_dicts, runs),
        "REST shim: rest_page reshaping (extra)": await median_ms(reshape, runs),
    }
    return parts, fields(data)


async def profile(engine: AsyncEngine, runs: int) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        await graphql_page(engine)
    profiler.disable()
    return pstats.Stats(profiler)


async def main_async(url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url)
    try:
        for _ in range(5):  # warm up: caches, pool, first-use imports
            await graphql_page(engine)
        parts, resolved = await wall_clock(engine, args.runs)
        stats = await profile(engine, args.runs)
    finally:
        await engine.dispose()
    print_wall_clock(parts, resolved, args.runs)
    print_profile(stats, args.runs, args.top)


def print_wall_clock(parts: dict[str, float], resolved: int, runs: int) -> None:
    print(f"\nWall clock, medians over {runs} runs (ms):")
    for name, value in parts.items():
        print(f"  {name:<55} {value:8.2f}")
    total = parts["graphql page (execute + orjson)"]
    rest = total - sum(v for k, v in parts.items() if k.startswith("  of which"))
    print(f"  {'  executor and the rest (total - parts above)':<55} {rest:8.2f}")
    print(
        f"  {f'  ... per resolved field ({resolved} fields), us':<55} {rest / resolved * 1000:8.2f}"
    )


def print_profile(stats: pstats.Stats, runs: int, top: int) -> None:
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    by_component: dict[str, float] = defaultdict(float)
    for key, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        by_component[component(key)] += tottime
    grand = sum(by_component.values())
    print(
        f"\ncProfile self time by component (per request, profiled: {grand / runs * 1000:.1f} ms):"
    )
    for name, seconds in sorted(by_component.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<55} {seconds / runs * 1000:8.2f} ms {seconds / grand:6.1%}")
    print(f"\nTop {top} functions by self time (per request):")
    for (file, line, func), (_cc, calls, tottime, _ct, _c) in sorted(
        raw.items(), key=lambda kv: -kv[1][2]
    )[:top]:
        where = f"{'/'.join(Path(file).parts[-2:])}:{line}" if line else file
        print(
            f"  {tottime / runs * 1000:7.2f} ms  {calls // runs:7d} calls  {func[:48]:<48} {where}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="clusterql-profile-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'profile.db'}"
        asyncio.run(seed(url, args.clusters, 20))
        asyncio.run(main_async(url, args))


if __name__ == "__main__":
    main()
