"""Controller reports (SPEC §8) over HTTP, on SQLite: what one big report costs, how many reports
a server takes, and what they do to reads (bench/README.md says how).

    .venv/bin/python -m bench.reports [--quick] [--out figures.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.measure import environment, load_average, percentile, seed, token, unthrottled
from clusterql.fleet import changed, plausible_cluster
from clusterql.simulate import as_report
from models.records import ClusterState, NodeStatus
from models.tokens import Permission
from tests.live_server import Server, serve_process, token_client

REPORT = """
mutation Report($input: ClusterReport!) {
  reportCluster(input: $input) { id nodesCount failedNodesCount }
}
"""
REPORT_WITH_NODES = """
mutation ReportWithNodes($input: ClusterReport!) {
  reportCluster(input: $input) { id nodesCount failedNodesCount nodes { id name status } }
}
"""
REMOVE = "mutation Remove($id: ID!) { removeCluster(id: $id) }"
SCENARIOS = ("register", "replace", "update5", "same", "update5+nodes")
READ = {"limit": 100, "return_nodes": True}


def renamed(state: ClusterState, tag: str) -> ClusterState:
    """`state` with every node name changed (a report that replaces all the nodes)."""
    return replace(state, nodes=[replace(n, name=f"{tag}-{n.name}") for n in state.nodes])


def changed_share(rng: random.Random, state: ClusterState, share: float) -> ClusterState:
    """`state` with `share` of its nodes, picked at random, moved to another state."""
    nodes, now = list(state.nodes), datetime.now(UTC)
    for i in rng.sample(range(len(nodes)), k=round(share * len(nodes))):
        nodes[i] = changed(rng, nodes[i], now)
    return replace(state, nodes=nodes)


async def report(client: httpx.AsyncClient, query: str, state: ClusterState) -> dict[str, Any]:
    """Send `state`; its answer, checked against it."""
    body = {"query": query, "variables": {"input": as_report(state)}}
    response = await client.post("/graphql", json=body)
    payload = response.json()
    assert response.status_code == 200, payload
    assert not payload.get("errors"), payload
    answer: dict[str, Any] = payload["data"]["reportCluster"]
    failed = sum(n.status is NodeStatus.FAILED for n in state.nodes)
    assert (answer["nodesCount"], answer["failedNodesCount"]) == (len(state.nodes), failed)
    assert "nodes" not in answer or len(answer["nodes"]) == len(state.nodes)
    return answer


async def big_reports(
    server: Server, admin: str, controller: str, nodes: int, reps: int
) -> dict[str, list[float]]:
    """Milliseconds per scenario; repetition 0 warms up, untimed."""
    rng = random.Random(5000)
    now = datetime.now(UTC)
    main = plausible_cluster(rng, "big-main", nodes, now, provider=None)
    times: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    async with token_client(server.url, controller, 300) as c, token_client(server.url, admin) as a:
        await report(c, REPORT, main)
        for rep in range(reps + 1):
            fresh = plausible_cluster(rng, f"big-new-{rep}", nodes, now)
            main = renamed(main, f"r{rep}")
            steps = [
                ("register", REPORT, fresh),
                ("replace", REPORT, main),
                ("update5", REPORT, main := changed_share(rng, main, 0.05)),
                ("same", REPORT, main),
                ("update5+nodes", REPORT_WITH_NODES, main := changed_share(rng, main, 0.05)),
            ]
            for scenario, query, state in steps:
                started = time.perf_counter()
                answer = await report(c, query, state)
                if rep:
                    times[scenario].append((time.perf_counter() - started) * 1000)
                if scenario == "register":
                    removal = {"query": REMOVE, "variables": {"id": answer["id"]}}
                    assert (await a.post("/graphql", json=removal)).json()["data"]["removeCluster"]
    return times


def simulation(server: Server, controller: str, seconds: float) -> subprocess.Popen[str]:
    """`clusterql simulate`: 8 controllers reporting back to back for `seconds`."""
    command = [sys.executable, "-m", "clusterql.cli", "simulate", "--url", server.url]
    command += ["--token", controller, "--controllers", "8", "--interval", "0.001"]
    command += ["--duration", str(seconds), "--prefix", f"load{time.monotonic_ns()}"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def simulated(process: subprocess.Popen[str], seconds: float) -> dict[str, float]:
    """Reports per second and the median latency of a finished simulation."""
    out, err = process.communicate(timeout=seconds + 120)
    found = re.search(r"acknowledged (\d+), refused 0, failed 0; median latency ([\d.]+) ms", out)
    assert process.returncode == 0, (out, err)
    assert found, (out, err)
    return {"reports_per_s": int(found[1]) / seconds, "p50_ms": float(found[2])}


async def reads(client: httpx.AsyncClient, seconds: float) -> list[float]:
    """Read the first page with nodes back to back for `seconds`; milliseconds each."""
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = await client.post("/runtime/api/v1/clusters", json=READ)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        assert len(response.json()["clusters"]) == 100
    return out


async def reads_under_load(
    server: Server, admin: str, controller: str, pairs: int, seconds: float
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {"idle": [], "loaded": []}
    writers = []
    async with token_client(server.url, admin, 60) as client:
        await reads(client, 1.0)  # warm-up, untimed
        for _ in range(pairs):
            latencies["idle"] += await reads(client, seconds)
            process = simulation(server, controller, seconds + 1.0)
            await asyncio.sleep(0.5)  # the writers are at full speed by then
            latencies["loaded"] += await reads(client, seconds)
            writers.append(simulated(process, seconds + 1.0))
    figures: dict[str, Any] = {
        k: {"n": len(v), "p50_ms": percentile(v, 0.5), "p90_ms": percentile(v, 0.9)}
        for k, v in latencies.items()
    }
    figures["loaded_over_idle_p50"] = figures["loaded"]["p50_ms"] / figures["idle"]["p50_ms"]
    figures["writers"] = writers
    return figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"environment": environment(), "parameters": vars(args).copy()}
    with tempfile.TemporaryDirectory(prefix="clusterql-bench-") as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        admin = asyncio.run(seed(url, args.clusters, 20))
        # bound to the names its reports and simulations use (big-main, big-new-N, loadNNN-K)
        controller = asyncio.run(token(url, Permission.CONTROLLER, ["big-*", "load*"]))
        with serve_process(unthrottled({"CLUSTERQL_DATABASE_URL": url})) as server:
            times = asyncio.run(big_reports(server, admin, controller, args.big_nodes, args.reps))
            figures["big"] = {
                s: {"median_ms": statistics.median(t), "p90_ms": percentile(t, 0.9)}
                for s, t in times.items()
            }
            figures["load_after_big"] = load_average()
            figures["throughput"] = simulated(
                simulation(server, controller, args.write_seconds), args.write_seconds
            )
            figures["reads"] = asyncio.run(
                reads_under_load(server, admin, controller, args.pairs, args.phase_seconds)
            )
    figures["load_after"] = load_average()
    return figures


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--clusters", type=int, default=2000, help="seeded clusters of 20 nodes")
    p.add_argument("--big-nodes", type=int, default=5000, help="nodes of the big report")
    p.add_argument("--reps", type=int, default=7, help="timed repetitions of the scenarios")
    p.add_argument("--write-seconds", type=float, default=20.0)
    p.add_argument("--pairs", type=int, default=4, help="idle and loaded read phases")
    p.add_argument("--phase-seconds", type=float, default=6.0)
    p.add_argument("--quick", action="store_true", help="that every part runs, in seconds")
    p.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = p.parse_args()
    if args.quick:
        args.clusters, args.big_nodes, args.reps = 120, 200, 1
        args.write_seconds, args.pairs, args.phase_seconds = 1.0, 1, 1.0
    return args


def main() -> None:
    args = parse_args()
    text = json.dumps(run(args), indent=2, default=str) + "\n"  # a Path in the parameters
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
