"""Benchmark: `limit=100` pages with nodes on PostgreSQL and SQLite, and 1 vs 2 worker processes.

One run:

1. starts a throwaway PostgreSQL server (`scripts/postgres`, removed at the end) and seeds the
   same data into a database on it and into a temporary SQLite file: 5,000 clusters x 20 nodes
   by default (bench/support.py's generator), and an Admin token;
2. latency: one `clusterql serve` (1 worker) per database, both running; requests one at a time
   over one keep-alive connection each, alternating SQLite and PostgreSQL request by request
   (so that noise from this shared machine hits both alike), round-robin over page depths from
   the first page to the last; p50 and p90 per database;
3. throughput: `clusterql serve --workers 1` and `--workers 2` on the PostgreSQL database (and,
   for comparison, on the SQLite file), all started up front; each is loaded in turn by
   `--concurrency` clients for `--seconds` after a warm-up, the turns alternating and repeated
   `--repeats` times; requests per second is completed 200 answers over the measured time (the
   median of the repeats). Each request comes on a new connection (see `throughput` for why;
   `--keep-alive` to keep them). The CPU the server's processes used meanwhile is reported (in
   cores: CPU seconds per second), and that of the load generator (this process), which competes
   with the servers and PostgreSQL for a 2-core machine's cores: a second worker can only help
   as much as a second core is free.

Every answer is checked to be a 200 holding 100 clusters with their nodes.

    .venv/bin/python bench/postgres.py [--clusters 5000] [--seconds 8] [--out figures.json]

The throwaway server runs with fsync=off (scripts/postgres): it does not change reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support import (  # bench/ is this script's directory
    Server,
    clusterql_server,
    cpu_seconds,
    create_database,
    environment,
    load_average,
    percentile,
    postgres_server,
    seed,
)

PATH = "/runtime/api/v1/clusters"
LIMIT = 100


# --- requests ----------------------------------------------------------------------------------


def _check(response: httpx.Response) -> None:
    """A 200 whose clusters all carry their nodes (the last page may hold fewer than 100)."""
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    clusters = response.json()["clusters"]
    if not clusters or any("nodes" not in c for c in clusters):
        raise RuntimeError("a page without clusters or without their nodes")


def _body(next_key: str) -> dict[str, Any]:
    return {"limit": LIMIT, "return_nodes": True, "next_key": next_key}


async def page_keys(base: str, headers: dict[str, str]) -> list[str]:
    """The `next_key` of every page of a full walk ("" for the first)."""
    keys = [""]
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        while True:
            response = await client.post(PATH, json=_body(keys[-1]))
            _check(response)
            following = response.json()["pagination"].get("next_key")
            if following is None:
                return keys
            keys.append(following)


@dataclass
class Load:
    requests: int
    seconds: float
    client_cpu: float  # this process's CPU seconds over the measured time, per wall second
    server_cpu: float  # the server's (all its worker processes') CPU seconds, per wall second

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def throughput(
    server: Server,
    headers: dict[str, str],
    keys: list[str],
    concurrency: int,
    seconds: float,
    keep_alive: bool,
) -> Load:
    """Completed requests per second with `concurrency` clients always waiting on an answer.

    Without `keep_alive` every request comes on a new connection, which whichever worker is
    free accepts. With it, a connection stays with the worker that accepted it, and uvicorn's
    workers accept in bursts (asyncio accepts every pending connection at once), so a few
    connections opened together may all land on one worker while the other idles.
    """
    warmup = min(2.0, seconds / 2)
    started = time.monotonic()
    measure_from, measure_until = started + warmup, started + warmup + seconds
    done = 0

    async def client_loop(c: int, client: httpx.AsyncClient) -> None:
        nonlocal done
        i = c
        while time.monotonic() < measure_until:
            response = await client.post(PATH, json=_body(keys[i % len(keys)]))
            _check(response)
            if measure_from <= time.monotonic() <= measure_until:
                done += 1
            i += concurrency

    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency if keep_alive else 0
    )
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=60, limits=limits
    ) as client:
        cpu = server_cpu = 0.0

        async def cpu_probe() -> None:
            nonlocal cpu, server_cpu
            await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
            before, server_before = time.process_time(), cpu_seconds(server.pid) or 0.0
            await asyncio.sleep(max(0.0, measure_until - time.monotonic()))
            cpu = time.process_time() - before
            server_cpu = (cpu_seconds(server.pid) or 0.0) - server_before

        await asyncio.gather(cpu_probe(), *(client_loop(c, client) for c in range(concurrency)))
    return Load(done, seconds, cpu / seconds, server_cpu / seconds)


# --- the run -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clusters", type=int, default=5_000)
    p.add_argument("--nodes", type=int, default=20, help="nodes per cluster")
    p.add_argument("--samples", type=int, default=150, help="timed latency requests per database")
    p.add_argument("--concurrency", type=int, default=8, help="clients in the throughput phases")
    p.add_argument("--seconds", type=float, default=8.0, help="measured time per throughput turn")
    p.add_argument("--repeats", type=int, default=2, help="turns per server in throughput")
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="throughput clients keep their connections (default: a new one per request)",
    )
    p.add_argument("--out", type=Path, help="also write the figures here as JSON")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    parameters = {k: v for k, v in vars(args).items() if k != "out"}
    figures: dict[str, Any] = {"environment": environment(), "parameters": parameters}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(postgres_server())
        urls = {
            "sqlite": f"sqlite+aiosqlite:///{scratch / 'bench.db'}",
            "postgresql": asyncio.run(create_database(server.url, "bench")),
        }
        secrets = {}
        for name, url in urls.items():
            started = time.perf_counter()
            secrets[name] = asyncio.run(seed(url, args.clusters, args.nodes))
            print(f"seeded {name}: {time.perf_counter() - started:.1f} s", flush=True)
        headers = {name: {"Authorization": f"Bearer {s}"} for name, s in secrets.items()}

        bases = {
            (name, workers): stack.enter_context(clusterql_server(urls[name], workers))
            for name in urls
            for workers in (1, 2)
        }
        keys = asyncio.run(page_keys(bases["postgresql", 1].url, headers["postgresql"]))
        assert keys == asyncio.run(page_keys(bases["sqlite", 1].url, headers["sqlite"]))
        print(f"{len(keys)} pages of {LIMIT}; latency ...", flush=True)

        figures["latency"] = asyncio.run(latency(bases, headers, keys, args.samples))
        print(json.dumps(figures["latency"]), flush=True)

        runs: dict[str, list[Load]] = {f"{n}/{w}": [] for n in urls for w in (1, 2)}
        for _ in range(args.repeats):
            for name in urls:
                for workers in (1, 2):
                    load = asyncio.run(
                        throughput(
                            bases[name, workers],
                            headers[name],
                            keys,
                            args.concurrency,
                            args.seconds,
                            args.keep_alive,
                        )
                    )
                    runs[f"{name}/{workers}"].append(load)
                    print(
                        f"{name} workers={workers}: {load.rps:.1f} req/s "
                        f"(server CPU {load.server_cpu:.2f} cores, client {load.client_cpu:.2f})",
                        flush=True,
                    )
        figures["throughput"] = {
            key: {
                "workers": int(key.split("/")[1]),
                "rps_median": round(statistics.median(x.rps for x in loads), 1),
                "rps_runs": [round(x.rps, 1) for x in loads],
                "server_cpu_cores": [round(x.server_cpu, 2) for x in loads],
                "client_cpu_cores": [round(x.client_cpu, 2) for x in loads],
            }
            for key, loads in runs.items()
        }
    figures["environment"]["load_average_after"] = load_average()
    print_report(figures)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


async def latency(
    bases: dict[tuple[str, int], Server],
    headers: dict[str, dict[str, str]],
    keys: list[str],
    samples: int,
) -> dict[str, Any]:
    """p50/p90 (ms) per database on its 1-worker server: requests one at a time on each,
    alternating between the databases, round-robin over the pages."""
    clients = {
        name: httpx.AsyncClient(base_url=bases[name, 1].url, headers=headers[name], timeout=60)
        for name in headers
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for i in range(len(keys) + samples):  # the first pass over the keys is a warm-up
            key = keys[i % len(keys)]
            names = list(clients) if i % 2 == 0 else list(reversed(clients))
            for name in names:
                started = time.perf_counter()
                response = await clients[name].post(PATH, json=_body(key))
                elapsed = time.perf_counter() - started
                _check(response)
                if i >= len(keys):
                    times[name].append(elapsed * 1000)
    finally:
        for client in clients.values():
            await client.aclose()
    return {
        name: {
            "n": len(xs),
            "p50_ms": round(percentile(xs, 0.5), 1),
            "p90_ms": round(percentile(xs, 0.9), 1),
        }
        for name, xs in times.items()
    }


def print_report(figures: dict[str, Any]) -> None:
    env = figures["environment"]
    print()
    print(
        f"{env['date']}  {env['cpus']} CPUs ({env['cpu']}), load average before "
        f"{env['load_average']} after {env['load_average_after']}"
    )
    print(
        f"limit={LIMIT} pages with nodes, {figures['parameters']['clusters']} clusters x "
        f"{figures['parameters']['nodes']} nodes, REST POST {PATH}"
    )
    print("latency, one request at a time (1 worker):")
    for name, v in figures["latency"].items():
        print(
            f"  {name:<11} p50 {v['p50_ms']:>7.1f} ms   p90 {v['p90_ms']:>7.1f} ms   (n={v['n']})"
        )
    connections = "kept alive" if figures["parameters"]["keep_alive"] else "one per request"
    print(
        f"throughput, {figures['parameters']['concurrency']} concurrent clients, "
        f"connections {connections}:"
    )
    for key, v in figures["throughput"].items():
        print(
            f"  {key:<13} {v['rps_median']:>6.1f} req/s  runs {v['rps_runs']}  "
            f"server CPU (cores) {v['server_cpu_cores']}  client {v['client_cpu_cores']}"
        )


if __name__ == "__main__":
    main()
