"""clusterql against the raw-driver floor in ONE process, without HTTP, back to back and after
a pause.

`python -m bench.inprocess [--quick]`: both apps (`bench/floor.py`'s and `clusterql serve`'s,
with its startup frozen out of the collector as there) on one seeded SQLite database, each
request an ASGI call in this process, the systems interleaved in an order shuffled per round,
the page with nodes timed first, then the page without (each among its own kind: see
`measure`). Every answer is checked against the floor's before anything is timed.

Each request is timed to its answer's last byte, which is what a client waits for (what the
app still does after it, such as clusterql's returning the snapshot's connection and counting
the request, is reported apart, to the app's return). Two regimes, each reported as medians and
ratios to the floor of the same round set:

- back to back: one request right after the other, everything warm;
- after a pause: the process sleeps `--pause-ms` (30) before each request, as each server of
  `bench.honest` waits while the other variants run. What a request costs grows after a pause
  (caches and the CPU's state are another job's by then), and it grows with the work the request
  does: this is how the two regimes tell how much of a ratio is that.

No client, no sockets, no other process: what it times is the servers' own work, without the
HTTP cost both share in `bench.honest`; its ratios came out within about a tenth of
`bench.honest`'s (bench/README.md).

Then the **footprint** of one request of each variant, counted by `sys.setprofile` (no clock:
the same code gives the same counts on any machine, however busy): the Python functions it
calls, and how many distinct ones (code objects), by where their code lives. The distinct
functions are what a request brings back into the caches after a pause, so they are what
makes the second regime dearer than the first.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from starlette.types import ASGIApp

from bench.floor import build_app
from bench.honest import LIMIT, TOMBSTONES, Variant, as_rest, require, seed_sqlite
from bench.measure import load_average, unthrottled
from clusterql.app import create_app
from tests import asgi

SYSTEMS = ("floor", "rest", "graphql")
ROOT = Path(__file__).resolve().parent.parent
OURS = ("clusterql", "graph", "models", "rest_shim", "bench", "tests")


async def call(app: ASGIApp, path: str, body: bytes, token: str) -> bytes:
    """One POST through `app`, as uvicorn would hand it over; its body (status 200 required)."""
    status, data = await asgi.post(app, path, body, token)
    require(status == 200, f"{path}: HTTP {status}: {data[:300]!r}")
    return data


async def rounds(
    apps: Mapping[Variant, ASGIApp], token: str, count: int, pause_s: float
) -> dict[Variant, list[tuple[float, float]]]:
    """`count` rounds, each calling every variant once in a shuffled order: per request, the
    seconds to its answer's last byte and to the app's return."""
    requests = {v: v.request() for v in apps}
    times: dict[Variant, list[tuple[float, float]]] = {v: [] for v in apps}
    order = list(apps)
    for _ in range(count):
        random.shuffle(order)
        for v in order:
            if pause_s:
                # The whole process idle, its loop included: not an await, on purpose.
                time.sleep(pause_s)  # noqa: ASYNC251
            path, body = requests[v]
            answer = await asgi.post_timed(apps[v], path, body, token)
            require(answer.status == 200, f"{v.name}: HTTP {answer.status}")
            assert answer.answered_s is not None  # an answer ends with its last body message
            times[v].append((answer.answered_s, answer.returned_s))
    return times


def home(code: CodeType) -> str:
    """Where a function's code lives: one of this repository's packages (`OURS`), `generated`
    (code made at run time: the planner's, dataclasses'), the top-level package of a
    third-party distribution, or `stdlib`."""
    filename = code.co_filename
    if filename.startswith("<"):
        return "generated" if not filename.startswith("<frozen") else "stdlib"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    if path.is_relative_to(ROOT):
        top = path.relative_to(ROOT).parts[0]
        return top if top in OURS else "other"
    return "stdlib"


async def footprint(run: Callable[[], Awaitable[Any]]) -> tuple[int, dict[str, set[CodeType]]]:
    """The Python calls `run()` makes, and the distinct functions it calls by `home`."""
    calls = 0
    codes: dict[str, set[CodeType]] = collections.defaultdict(set)

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1
            codes[home(frame.f_code)].add(frame.f_code)

    sys.setprofile(profile)
    try:
        await run()
    finally:
        sys.setprofile(None)
    return calls, codes


async def footprints(
    apps: Mapping[Variant, ASGIApp], token: str, top: int = 6
) -> list[dict[str, Any]]:
    """One request of each variant, counted (`footprint`), with ratios to its floor's."""
    counted = {}
    for v in apps:
        path, body = v.request()
        counted[v] = await footprint(functools.partial(call, apps[v], path, body, token))
    rows = []
    for v, (calls, codes) in counted.items():
        floor_calls, floor_codes = counted[Variant("floor", "sqlite", v.nodes)]
        distinct = sum(map(len, codes.values()))
        floor_distinct = sum(map(len, floor_codes.values()))
        largest = sorted(codes.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]
        rows.append(
            {
                "system": v.system,
                "nodes": v.nodes,
                "calls": calls,
                "calls_x_floor": round(calls / floor_calls, 2),
                "distinct": distinct,
                "distinct_x_floor": round(distinct / floor_distinct, 2),
                "largest": {where: len(found) for where, found in largest},
            }
        )
    return rows


@asynccontextmanager
async def seeded_apps(
    clusters: int, nodes: int, prefix: str = "clusterql-inprocess-"
) -> AsyncIterator[tuple[ASGIApp, ASGIApp, str]]:
    """The floor's app and clusterql's (its startup frozen out of the collector, as `clusterql
    serve` runs it), both started, on one temporary SQLite database seeded with `clusters` x
    `nodes` (minus the tombstones), and the secret of its Admin token."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        token = await seed_sqlite(url, clusters, nodes)
        os.environ.update(unthrottled({"CLUSTERQL_DATABASE_URL": url}))
        floor_app, clusterql_app = build_app(url), create_app(freeze_startup=True)
        async with (
            floor_app.router.lifespan_context(floor_app),
            clusterql_app.router.lifespan_context(clusterql_app),
        ):
            yield floor_app, clusterql_app, token


async def measure(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with seeded_apps(args.clusters, args.nodes) as (floor_app, clusterql_app, token):
        variants = [Variant(s, "sqlite", nodes) for nodes in (True, False) for s in SYSTEMS]
        apps = {v: floor_app if v.system == "floor" else clusterql_app for v in variants}
        # the answers, checked before anything is timed: each system's is the floor's page
        pages = {v: as_rest(v, await call(apps[v], *v.request(), token)) for v in variants}
        live = args.clusters - len(TOMBSTONES)
        for v, page in pages.items():
            require(
                page == pages[Variant("floor", "sqlite", v.nodes)],
                f"{v.name}: not the floor's page",
            )
            require(len(page["clusters"]) == min(LIMIT, live), f"{v.name}: a short page")
        rows = []
        for nodes in (True, False):
            # One kind of page at a time: in a round set with the pages with nodes, the
            # floor's page without them took 3.3 to 3.5 ms against 2.6 ms among its own
            # kind (clusterql's 3.5 against 3.4 ms), which bench.honest's floor, a server
            # process of its own, does not show.
            kind = {v: app for v, app in apps.items() if v.nodes == nodes}
            rows += await timed_rows(kind, token, args)
        return rows, await footprints(apps, token)


async def timed_rows(
    apps: Mapping[Variant, ASGIApp], token: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """`apps`' variants timed in each regime, with their ratios to the floor's."""
    await rounds(apps, token, args.warmup_rounds, 0)
    rows = []
    for pause_ms in args.pause_ms:
        print(f"{args.rounds} rounds, pause {pause_ms:g} ms ...", file=sys.stderr)
        times = await rounds(apps, token, args.rounds, pause_ms / 1000)
        answered = {v: statistics.median(a for a, _ in t) for v, t in times.items()}
        returned = {v: statistics.median(r for _, r in t) for v, t in times.items()}
        for v in apps:
            floor = Variant("floor", "sqlite", v.nodes)
            rows.append(
                {
                    "system": v.system,
                    "nodes": v.nodes,
                    "pause_ms": pause_ms,
                    "median_ms": round(answered[v] * 1000, 3),
                    "x_floor": round(answered[v] / answered[floor], 2),
                    "returned_ms": round(returned[v] * 1000, 3),
                    "returned_x_floor": round(returned[v] / returned[floor], 2),
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
    rows, counted = asyncio.run(measure(args))
    print(f"load average (1, 5, 15 min): at the start {started}, at the end {load_average()}")
    print("Medians to the answer's last byte, and to the app's return (its work after the answer):")
    print("| system | nodes | pause | to the answer | x floor | to the return | x floor |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        nodes = "with" if r["nodes"] else "without"
        line = f"| {r['system']} | {nodes} | {r['pause_ms']:g} ms | {r['median_ms']} ms |"
        print(f"{line} **{r['x_floor']}x** | {r['returned_ms']} ms | {r['returned_x_floor']}x |")
    print("\nFootprint of one request (Python calls; distinct functions, the most by where):\n")
    print("| system | nodes | calls | x floor | distinct | x floor | most distinct |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in counted:
        nodes = "with" if r["nodes"] else "without"
        largest = ", ".join(f"{where} {n}" for where, n in r["largest"].items())
        print(
            f"| {r['system']} | {nodes} | {r['calls']} | {r['calls_x_floor']}x "
            f"| {r['distinct']} | {r['distinct_x_floor']}x | {largest} |"
        )


if __name__ == "__main__":
    main()
