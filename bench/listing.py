"""Benchmark of listing at scale: keyset pages at any depth, and filtered counts, run on demand.

Seeds a SQLite database of 1,000,000 clusters (0 to 3 nodes each; providers, regions, controller
statuses and node health mixed so that every filter is selective), or reuses the file given with
`--db` if it already holds clusters, then times in-process, each call inside
`models.engine.read_transaction`:

- for every order and direction, with no filter, one provider, two, and a rare one (0.2%),
  `models.listing.page` with limit=100 for the first page and for a page near the end (its
  position is that of a real cluster about 200 places before the end of that order), and the
  ratio of their medians (depth independence: it should be close to 1);
- `models.listing.count_matching` (REST `total_count`, GraphQL `totalCount`) for no filter and
  for the heaviest combination: name substring + providers + regions + has_unhealthy_nodes +
  controller_statuses;
- with `--rest`, the same first and near-end pages through the REST endpoint (in-process,
  httpx.ASGITransport, `clusterql.app.create_app`), where a request also counts its matches.

A filtered page walks its order's index and tests each cluster it meets, so its cost follows how
densely matches lie around its position, not its depth: names begin with environment and team,
then the provider, so the first name-ordered page of gcp clusters steps over aws and azure ones.

Measurements are interleaved round-robin (each round times every case once), so that noise from
a shared machine hits them alike; untimed warm-up rounds first. Medians in milliseconds.

    .venv/bin/python bench/listing.py --db listing.db   # seed (3-4 min on 2 cores), then time
    .venv/bin/python bench/listing.py --db listing.db   # again: reuses the file (15 s)
    .venv/bin/python bench/listing.py --clusters 100000 --rest --out figures.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from support import (
    HEALTHY,
    TROUBLED,
    add_token,
    environment,
    load_average,
    scratch_file,
    wide_console,
)

from clusterql.app import create_app
from clusterql.resources import resources
from clusterql.settings import Settings
from models import listing, migrations
from models.engine import create_engine, read_transaction, write_transaction
from models.listing import ClusterFilter, Direction, Order, OrderField, Position, position_of
from models.records import ClusterRecord, ClusterState, ControllerStatus, NodeState, NodeStatus
from models.seeding import insert_clusters
from models.tables import clusters
from models.tokens import Permission, new_secret

LIMIT = 100
FROM_END = 200  # the near-end page starts this many clusters before the end of its order
REST_PATH = "/runtime/api/v1/clusters"
TOKEN_NAME = "bench-listing-admin"

# --- seeding ---------------------------------------------------------------------------------

# provider -> (share of the fleet, its regions)
_PROVIDERS = {
    "aws": (45, ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1"]),
    "gcp": (25, ["us-central1", "europe-west4", "asia-east1"]),
    "azure": (20, ["eastus", "westeurope", "southeastasia"]),
    "kubernetes": (10, ["dc-paris", "dc-frankfurt"]),
    "oci": (0.2, ["eu-frankfurt-1"]),  # a rare one: a page reads all its clusters and sorts them
}
_ENVIRONMENTS = ["prod", "staging", "dev", "test", "sandbox"]
_TEAMS = ["payments", "search", "billing", "identity", "media", "ml", "edge", "data"]
# Clusters inserted in one call share their timestamps: a report every few ms over 1 M clusters.
_SAME_INSTANT = 50
_TRANSACTION = 50_000


def _node(rng: random.Random, i: int, region: str, status: NodeStatus) -> NodeState:
    installed = status in (NodeStatus.MONITORED_WITH_SENSOR, NodeStatus.FAILED)
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return NodeState(
        name=f"node-{i}",
        hostname=f"ip-{ip.replace('.', '-')}",
        status=status,
        sensor_installed=installed,
        sensor_version="2.3.1" if installed else "",
        region=region,
        architecture="amd64",
        internal_dns=f"ip-{ip.replace('.', '-')}.{region}.internal",
        internal_ip=ip,
    )


def _cluster(rng: random.Random, n: int) -> ClusterState:
    provider = rng.choices(list(_PROVIDERS), [w for w, _ in _PROVIDERS.values()])[0]
    all_regions = _PROVIDERS[provider][1]
    regions = rng.sample(all_regions, min(len(all_regions), rng.choice([1, 1, 1, 2])))
    weights = TROUBLED if rng.random() < 0.2 else HEALTHY
    statuses = rng.choices(
        [NodeStatus(s) for s in weights], list(weights.values()), k=rng.randint(0, 3)
    )
    return ClusterState(
        name=f"{rng.choice(_ENVIRONMENTS)}-{rng.choice(_TEAMS)}-{provider}-{n:07d}",
        provider=provider,
        regions=regions,
        controller_version=f"1.{rng.randrange(8)}.{rng.randrange(20)}",
        controller_status=ControllerStatus.RUNNING
        if rng.random() < 0.95
        else ControllerStatus.STOPPED,
        nodes=[_node(rng, i, rng.choice(regions), s) for i, s in enumerate(statuses)],
    )


async def seed(engine: AsyncEngine, count: int) -> None:
    """`count` clusters through `models.seeding.insert_clusters`, in big write transactions."""
    rng = random.Random(20241231)
    start = datetime.now(UTC) - timedelta(hours=1)
    step = timedelta(hours=1) * _SAME_INSTANT / count
    started = time.perf_counter()
    for first in range(0, count, _TRANSACTION):
        async with write_transaction(engine) as conn:
            for n in range(first, min(first + _TRANSACTION, count), _SAME_INSTANT):
                states = [_cluster(rng, i) for i in range(n, min(n + _SAME_INSTANT, count))]
                await insert_clusters(conn, states, start + step * (n // _SAME_INSTANT))
        done = min(first + _TRANSACTION, count)
        rate = done / (time.perf_counter() - started)
        print(
            f"\rseeded {done:,} of {count:,} clusters ({rate:,.0f}/s)",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)


async def prepare(db: Path, count: int) -> tuple[int, float | None]:
    """The database at `db` with its clusters (seeded if it has none): (clusters, seed seconds)."""
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await migrations.upgrade(engine)
        async with read_transaction(engine) as conn:
            existing = (await conn.execute(select(func.count()).select_from(clusters))).scalar_one()
        if existing:
            print(f"reusing {db}: {existing:,} clusters", file=sys.stderr)
            return existing, None
        t0 = time.perf_counter()
        await seed(engine, count)
        return count, round(time.perf_counter() - t0, 1)
    finally:
        await engine.dispose()


# --- cases -----------------------------------------------------------------------------------

HEAVIEST = ClusterFilter(
    name="prod",
    providers=("aws", "gcp"),
    regions=("eu-west-1", "us-east-1", "europe-west4"),
    has_unhealthy_nodes=True,
    controller_statuses=("running",),
)
PAGE_FILTERS = {
    "none": ClusterFilter(),
    "gcp": ClusterFilter(providers=("gcp",)),
    "aws+azure": ClusterFilter(providers=("aws", "azure")),
    "oci": ClusterFilter(providers=("oci",)),
}
COUNT_FILTERS = {"none": ClusterFilter(), "heaviest": HEAVIEST}


@dataclass(frozen=True)
class PageCase:
    filter_name: str
    order: Order
    after: Position | None

    @property
    def label(self) -> str:
        depth = "first" if self.after is None else "near end"
        return f"{self.order.field} {self.order.direction} ({self.filter_name}) {depth}"


async def near_end(engine: AsyncEngine, where: ClusterFilter, order: Order) -> Position:
    """The position of a real cluster `FROM_END` places before the end of `order`."""
    back = Order(order.field, order.direction.reversed())
    async with read_transaction(engine) as conn:
        records, _ = await listing.page(conn, where, back, None, FROM_END)
    return position_of(records[-1], order.field)


async def page_cases(engine: AsyncEngine) -> list[PageCase]:
    cases = []
    for filter_name, where in PAGE_FILTERS.items():
        for field in OrderField:
            for direction in Direction:
                order = Order(field, direction)
                cases.append(PageCase(filter_name, order, None))
                cases.append(PageCase(filter_name, order, await near_end(engine, where, order)))
    return cases


async def check_page(engine: AsyncEngine, case: PageCase) -> None:
    """Honesty first: a near-end page holds the clusters that follow its position, in order."""
    where = PAGE_FILTERS[case.filter_name]
    async with read_transaction(engine) as conn:
        records, more = await listing.page(conn, where, case.order, case.after, LIMIT)
    assert len(records) == LIMIT, case.label
    assert more, case.label
    column = str(case.order.field)
    keys = [(getattr(r, column), r.id) for r in records]
    descending = case.order.direction is Direction.DESC
    assert keys == sorted(keys, reverse=descending), case.label
    if case.after is not None:
        start = (case.after.value, case.after.id)
        assert all((k < start) if descending else (k > start) for k in keys), case.label


# --- timing ----------------------------------------------------------------------------------

Timed = Callable[[], Awaitable[object]]


async def time_round_robin(
    calls: dict[str, Timed], samples: int, warmup: int, budget: float
) -> dict[str, list[float]]:
    """Each round times every call once, in a rotating order; untimed warm-up rounds first."""
    names = list(calls)
    out: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(warmup):
        for name in names:
            await calls[name]()
    started = time.perf_counter()
    for r in range(samples):
        rotation = r % len(names)
        for name in names[rotation:] + names[:rotation]:
            t0 = time.perf_counter()
            await calls[name]()
            out[name].append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - started > budget:
            break
    return out


def page_call(engine: AsyncEngine, case: PageCase) -> Timed:
    where = PAGE_FILTERS[case.filter_name]

    async def call() -> tuple[list[ClusterRecord], bool]:
        async with read_transaction(engine) as conn:
            return await listing.page(conn, where, case.order, case.after, LIMIT)

    return call


def count_call(engine: AsyncEngine, where: ClusterFilter) -> Timed:
    async def call() -> int:
        async with read_transaction(engine) as conn:
            return await listing.count_matching(conn, where)

    return call


async def in_process(engine: AsyncEngine, args: argparse.Namespace) -> dict[str, Any]:
    cases = await page_cases(engine)
    for case in cases:
        await check_page(engine, case)
    pages = await time_round_robin(
        {c.label: page_call(engine, c) for c in cases}, args.samples, args.warmup, args.budget
    )
    counts = await time_round_robin(
        {name: count_call(engine, where) for name, where in COUNT_FILTERS.items()},
        args.count_samples,
        1,
        args.budget,
    )
    matches = {}
    for name, where in COUNT_FILTERS.items():
        async with read_transaction(engine) as conn:
            matches[name] = await listing.count_matching(conn, where)
    return {"cases": cases, "pages": pages, "counts": counts, "matches": matches}


# --- the REST endpoint, in-process -----------------------------------------------------------


def rest_body(case: PageCase, cursor: str | None) -> dict[str, Any]:
    where = PAGE_FILTERS[case.filter_name]
    body: dict[str, Any] = {
        "limit": LIMIT,
        "order_by": str(case.order.field),
        "direction": str(case.order.direction),
    }
    if where.providers is not None:
        body["filters"] = {"providers": list(where.providers)}
    if cursor is not None:
        body["next_key"] = cursor
    return body


async def token(engine: AsyncEngine) -> str:
    secret = new_secret()
    async with write_transaction(engine) as conn:
        return await add_token(conn, f"{TOKEN_NAME}-{secret[-8:]}", Permission.ADMIN, secret=secret)


async def over_rest(db: Path, cases: list[PageCase], args: argparse.Namespace) -> dict[str, Any]:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{db}"))
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = resources(app).engine
        secret = await token(engine)
        headers = {"Authorization": f"Bearer {secret}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=600
        ) as client:
            calls: dict[str, Timed] = {}
            for case in cases:
                where = PAGE_FILTERS[case.filter_name]
                cursor = None
                if case.after is not None:
                    cursor = (
                        str(case.after.id)
                        if where.is_empty and case.order.is_default
                        else resources(app).cursors.encode(where, case.order, case.after)
                    )
                body = rest_body(case, cursor)

                async def call(body: dict[str, Any] = body) -> bytes:
                    response = await client.post(REST_PATH, json=body)
                    response.raise_for_status()
                    return response.content

                calls[case.label] = call
            samples = await time_round_robin(calls, args.rest_samples, 1, args.budget)
    return {"pages": samples}


# --- report ----------------------------------------------------------------------------------


def _filter_fields(where: ClusterFilter) -> dict[str, Any]:
    values = {f.name: getattr(where, f.name) for f in fields(where)}
    return {name: value for name, value in values.items() if value is not None}


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2)


def summarize(timed: dict[str, Any], rest: dict[str, Any] | None) -> dict[str, Any]:
    rows = []
    cases: list[PageCase] = timed["cases"]
    for first, deep in zip(cases[0::2], cases[1::2], strict=True):
        row: dict[str, Any] = {
            "order": str(first.order.field),
            "direction": str(first.order.direction),
            "filter": first.filter_name,
            "near_end_position": {"value": str(deep.after.value), "id": deep.after.id}
            if deep.after
            else None,
        }
        for name, source in (("page", timed["pages"]), ("rest", rest and rest["pages"])):
            if source:
                a, b = _median(source[first.label]), _median(source[deep.label])
                row[name] = {
                    "first_ms": a,
                    "near_end_ms": b,
                    "ratio": round(b / a, 2),
                    "n": len(source[first.label]),
                }
        rows.append(row)
    counts = {
        name: {"median_ms": _median(xs), "n": len(xs), "matches": timed["matches"][name]}
        for name, xs in timed["counts"].items()
    }
    return {"pages": rows, "counts": counts}


def print_report(figures: dict[str, Any]) -> None:
    from rich.table import Table

    console = wide_console(140)
    env, data = figures["environment"], figures["dataset"]
    seeded = f"seeded in {data['seed_seconds']} s" if data["seed_seconds"] else "reused"
    console.print(
        f"[bold]clusterql listing[/] {env['date']}, {env['cpus']} CPUs ({env['cpu']}), "
        f"Python {env['python']}, SQLite {env['sqlite']}; {data['clusters']:,} clusters "
        f"({seeded}), limit={LIMIT}, near end = {FROM_END} before the last"
    )
    rest = any("rest" in row for row in figures["pages"])
    table = Table(title="listing.page p50 in ms; ratio = near end / first")
    for column in ("order", "direction", "filter", "first", "near end", "ratio"):
        table.add_column(column, justify="left" if column in ("order", "direction") else "right")
    if rest:
        for column in ("REST first", "REST near end", "ratio"):
            table.add_column(column, justify="right")
    for row in figures["pages"]:
        cells = [row["order"], row["direction"], row["filter"]]
        for name in ("page", "rest") if rest else ("page",):
            v = row[name]
            cells += [f"{v['first_ms']:.2f}", f"{v['near_end_ms']:.2f}", f"{v['ratio']:.2f}"]
        table.add_row(*cells)
    console.print(table)
    for name, c in figures["counts"].items():
        console.print(
            f"count_matching ({name}): p50 {c['median_ms']:.1f} ms over {c['n']} runs "
            f"({c['matches']:,} matches)"
        )
    console.print(f"heaviest filter: {figures['heaviest_filter']}")
    console.print(f"load average: start {env['load_average']}, end {figures['load_average_end']}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, help="SQLite file: reused if it holds clusters, else seeded")
    p.add_argument("--clusters", type=int, default=1_000_000, help="clusters to seed")
    p.add_argument("--samples", type=int, default=30, help="timed rounds of pages")
    p.add_argument("--count-samples", type=int, default=7, help="timed rounds of counts")
    p.add_argument("--rest", action="store_true", help="also time the REST endpoint in-process")
    p.add_argument("--rest-samples", type=int, default=10, help="timed rounds of REST pages")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--budget", type=float, default=300.0, help="seconds per phase at most")
    p.add_argument("--seed-only", action="store_true", help="seed (or check) the file and stop")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    return p.parse_args()


@contextlib.contextmanager
def database(path: Path | None) -> Iterator[Path]:
    if path is not None:
        yield path
        return
    with scratch_file("listing.db") as db:
        yield db


async def run(db: Path, args: argparse.Namespace) -> dict[str, Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        timed = await in_process(engine, args)
    finally:
        await engine.dispose()
    rest = await over_rest(db, timed["cases"], args) if args.rest else None
    return summarize(timed, rest)


def main() -> None:
    args = parse_args()
    with database(args.db) as db:
        count, seed_seconds = asyncio.run(prepare(db, args.clusters))
        if args.seed_only:
            return
        figures: dict[str, Any] = {
            "environment": environment(("sqlalchemy", "aiosqlite"), sqlite=sqlite3.sqlite_version),
            "dataset": {"clusters": count, "seed_seconds": seed_seconds, "limit": LIMIT},
            "heaviest_filter": _filter_fields(HEAVIEST),
        }
        figures.update(asyncio.run(run(db, args)))
        figures["load_average_end"] = load_average()
    print_report(figures)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
