"""clusterql against the raw-driver floor in ONE process, without HTTP, back to back and after
a pause.

`python -m bench.inprocess [--quick]`: both apps (`bench/floor.py`'s and `clusterql serve`'s,
with its startup frozen out of the collector as there) on one seeded SQLite database, each
request an ASGI call in this process, the systems interleaved in an order shuffled per round.
Every answer is checked against the floor's before anything is timed.

Two regimes, each reported as medians and ratios to the floor of the same round set:

- back to back: one request right after the other, everything warm;
- after a pause: the process sleeps `--pause-ms` (30) before each request, as each server of
  `bench.honest` waits while the other variants run. What a request costs grows after a pause
  (caches and the CPU's state are another job's by then), and it grows with the work the request
  does: this is how the two regimes tell how much of a ratio is that.

No client, no sockets, no other process: what it times is the servers' own work, so its ratios
are higher than `bench.honest`'s for the same code (no shared HTTP cost dilutes them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from bench.floor import build_app
from bench.honest import LIMIT, TOMBSTONES, Variant, as_rest, require, seed_sqlite
from bench.measure import load_average, unthrottled
from clusterql.app import create_app
from tests import asgi

SYSTEMS = ("floor", "rest", "graphql")


async def call(app: ASGIApp, path: str, body: bytes, token: str) -> bytes:
    """One POST through `app`, as uvicorn would hand it over; its body (status 200 required)."""
    status, data = await asgi.post(app, path, body, token)
    require(status == 200, f"{path}: HTTP {status}: {data[:300]!r}")
    return data


async def rounds(
    apps: Mapping[Variant, ASGIApp], token: str, count: int, pause_s: float
) -> dict[Variant, list[float]]:
    """`count` rounds, each calling every variant once in a shuffled order; seconds taken."""
    requests = {v: v.request() for v in apps}
    times: dict[Variant, list[float]] = {v: [] for v in apps}
    order = list(apps)
    for _ in range(count):
        random.shuffle(order)
        for v in order:
            if pause_s:
                # The whole process idle, its loop included: not an await, on purpose.
                time.sleep(pause_s)  # noqa: ASYNC251
            path, body = requests[v]
            started = time.perf_counter()
            await call(apps[v], path, body, token)
            times[v].append(time.perf_counter() - started)
    return times


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="clusterql-inprocess-") as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        token = await seed_sqlite(url, args.clusters, args.nodes)
        os.environ.update(unthrottled({"CLUSTERQL_DATABASE_URL": url}))
        floor_app, clusterql_app = build_app(url), create_app(freeze_startup=True)
        variants = [Variant(s, "sqlite", nodes) for nodes in (True, False) for s in SYSTEMS]
        apps = {v: floor_app if v.system == "floor" else clusterql_app for v in variants}
        async with (
            floor_app.router.lifespan_context(floor_app),
            clusterql_app.router.lifespan_context(clusterql_app),
        ):
            # the answers, checked before anything is timed: each system's is the floor's page
            pages = {v: as_rest(v, await call(apps[v], *v.request(), token)) for v in variants}
            live = args.clusters - len(TOMBSTONES)
            for v, page in pages.items():
                require(
                    page == pages[Variant("floor", "sqlite", v.nodes)],
                    f"{v.name}: not the floor's page",
                )
                require(len(page["clusters"]) == min(LIMIT, live), f"{v.name}: a short page")
            await rounds(apps, token, args.warmup_rounds, 0)
            rows = []
            for pause_ms in args.pause_ms:
                print(f"{args.rounds} rounds, pause {pause_ms} ms ...", file=sys.stderr)
                times = await rounds(apps, token, args.rounds, pause_ms / 1000)
                medians = {v: statistics.median(t) for v, t in times.items()}
                for v in variants:
                    floor_ms = medians[Variant("floor", "sqlite", v.nodes)]
                    rows.append(
                        {
                            "system": v.system,
                            "nodes": v.nodes,
                            "pause_ms": pause_ms,
                            "median_ms": round(medians[v] * 1000, 3),
                            "x_floor": round(medians[v] / floor_ms, 2),
                        }
                    )
            return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup-rounds", type=int, default=20)
    parser.add_argument(
        "--pause-ms", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 30.0]
    )
    parser.add_argument("--quick", action="store_true", help="a small database, a few rounds")
    args = parser.parse_args()
    if args.quick:
        args.clusters, args.nodes, args.rounds, args.warmup_rounds = 300, 5, 5, 2
        args.pause_ms = [0.0, 1.0]
    return args


def main() -> None:
    args = parse_args()
    started = load_average()
    rows = asyncio.run(measure(args))
    print(f"load average (1, 5, 15 min): at the start {started}, at the end {load_average()}")
    print("| system | nodes | pause | median | x floor |\n|---|---|---:|---:|---:|")
    for r in rows:
        nodes = "with" if r["nodes"] else "without"
        line = f"| {r['system']} | {nodes} | {r['pause_ms']:g} ms | {r['median_ms']} ms |"
        print(f"{line} **{r['x_floor']}x** |")


if __name__ == "__main__":
    main()
