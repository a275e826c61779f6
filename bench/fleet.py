"""The fleet view (SPEC §11) over HTTP: `fleetSummary` and node searches, idle and while
`clusterql simulate` reports back to back (bench/README.md).

    .venv/bin/python -m bench.fleet --url URL   # a database seeded with `clusterql seed`
    .venv/bin/python -m bench.fleet --quick     # a small SQLite fleet: that it still runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import environment, percentile, seed, token, unthrottled
from bench.reports import simulated, simulation
from models.tokens import Permission
from tests.live_server import serve_process, token_client

QUERIES = {
    "fleetSummary": "{ fleetSummary { clusters staleClusters nodes nodesWithSensor"
    " clustersByProvider { key count } nodesByStatus { key count }"
    " sensorVersions { key count } } }",
    "fleetSummary(providers: aws)": '{ fleetSummary(filter: {providers: ["aws"]})'
    " { clusters staleClusters nodes nodesByStatus { key count } } }",
    "fleetSummary(name: -1)": '{ fleetSummary(filter: {name: "-1"}) { clusters nodes } }',
    "nodes(ip, totalCount)": '{ nodes(filter: {internalIp: "10.0.1.7"}) { totalCount } }',
    "nodes(first: 100)": "{ nodes(first: 100) { edges { node { name cluster { name } } } } }",
    "nodes(failed, totalCount)": "{ nodes(filter: {statuses: [FAILED]}, first: 20)"
    " { totalCount edges { node { name hostname } } } }",
}


async def _times(base: str, admin: str, seconds: float) -> dict[str, float]:
    """The p50 in ms of each query, each run back to back for `seconds`."""
    out: dict[str, float] = {}
    async with token_client(base, admin, 120) as client:
        for name, query in QUERIES.items():
            taken: list[float] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(taken) < 3:
                started = time.perf_counter()
                answer = (await client.post("/graphql", json={"query": query})).json()
                taken.append((time.perf_counter() - started) * 1000)
                assert "errors" not in answer, answer
            out[name] = round(percentile(taken, 0.5), 1)
    return out


def run(url: str, seconds: float) -> dict[str, Any]:
    admin = asyncio.run(token(url, Permission.ADMIN))
    controller = asyncio.run(token(url, Permission.CONTROLLER, ["*"]))  # what simulate names
    with serve_process(unthrottled({"CLUSTERQL_DATABASE_URL": url})) as server:
        idle = asyncio.run(_times(server.url, admin, seconds))
        writers = simulation(server, controller, seconds * len(QUERIES) + 2)
        loaded = asyncio.run(_times(server.url, admin, seconds))
        return {"environment": environment(), "idle_p50_ms": idle, "loaded_p50_ms": loaded,
                "writers": simulated(writers, seconds * len(QUERIES) + 2)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--url", help="a seeded database (default: a small temporary SQLite one)")
    p.add_argument("--seconds", type=float, default=10.0, help="per query and phase")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="clusterql-bench-") as scratch:
        url = args.url or f"sqlite+aiosqlite:///{Path(scratch) / 'fleet.db'}"
        if args.url is None:
            asyncio.run(seed(url, 200 if args.quick else 10_000, 2))
        print(json.dumps(run(url, 0.5 if args.quick else args.seconds), indent=2))


if __name__ == "__main__":
    main()
