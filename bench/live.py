"""Live updates (SPEC §11) over real websockets: how soon an event follows its report, what an
idle subscriber costs the server, and what subscribers (many, or one that never reads) cost
writers (bench/README.md says how).

    .venv/bin/python -m bench.live [--quick] [--subscribers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bench.measure import environment, percentile, seed, token, unthrottled
from models.tokens import Permission
from tests.live_server import Server, cpu_seconds, serve_process, token_client
from tests.postgres_server import postgres_server
from tests.subscriptions import BIG_EVENTS, Live, Refused, Stalled, big_report, connected

SMALL = "subscription S($filter: ClusterFilter) { clusterChanges(filter: $filter) { kind clusterId cluster { name nodesCount } } }"  # noqa: E501
REPORT = "mutation R($input: ClusterReport!) { reportCluster(input: $input) { id } }"
ENV = {
    "CLUSTERQL_SUBSCRIPTION_CONNECTIONS_PER_TOKEN": "5000",
    "CLUSTERQL_MAX_CONNECTIONS": "6000",
}


def _report(name: str, nodes: int = 10) -> dict[str, Any]:
    node = {"status": "MONITORED", "sensorInstalled": True, "sensorVersion": "5.3.0"}
    state = {
        "name": name, "provider": "aws", "regions": ["eu-west-1"], "controllerVersion": "1",
        "controllerStatus": "RUNNING",
        "nodes": [{"name": f"n{i}", "hostname": f"{name}-{i}", **node} for i in range(nodes)],
    }  # fmt: skip
    return {"query": REPORT, "variables": {"input": state}}


async def _seeded(url: str) -> tuple[str, str]:
    """A small fleet at `url`; an Admin token's secret and a Controller token's (bound to `*`)."""
    return await seed(url, 100, 10), await token(url, Permission.CONTROLLER, ["*"])


async def _latencies(report_to: str, listen_to: str, admin: str, controller: str, n: int) -> Any:
    """ms from each report's acknowledgement (its answer read by the controller) to its event's
    arrival at the subscriber, stamped by a task of its own as it comes in: below 0 when the
    event arrived first."""
    arrivals: asyncio.Queue[float] = asyncio.Queue()

    async def stamp(live: Live) -> None:
        while True:
            await live.event(within=3600)
            arrivals.put_nowait(time.perf_counter())

    taken: list[float] = []
    async with connected(listen_to, admin) as live, token_client(report_to, controller) as client:
        await live.subscribe(SMALL)
        await asyncio.sleep(0.3)
        stamping = asyncio.create_task(stamp(live))
        for i in range(n):
            answer = (await client.post("/graphql", json=_report(f"latency-{i % 20}"))).json()
            acked = time.perf_counter()
            assert "errors" not in answer, answer
            arrived = await asyncio.wait_for(arrivals.get(), 5)
            taken.append((arrived - acked) * 1000)
        stamping.cancel()
    return {"p50_ms": round(percentile(taken, 0.5), 2), "p99_ms": round(percentile(taken, 0.99), 2)}


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


@contextlib.asynccontextmanager
async def _subscribers(
    server: Server, admin: str, count: int, variables: Callable[[int], dict[str, Any]]
) -> AsyncIterator[list[int]]:
    """`count` connections, one subscription each (the `i`th's variables: `variables(i)`),
    reading their events: how many each has received, -1 once the server cut it off."""
    received = [0] * count
    async with contextlib.AsyncExitStack() as stack:
        lives: list[Live] = []
        for i in range(count):
            lives.append(await stack.enter_async_context(connected(server.url, admin)))
            await lives[-1].subscribe(SMALL, variables(i))

        async def read(i: int) -> None:
            try:
                while True:
                    await lives[i].receive(within=3600)
                    received[i] += 1
            except Refused:
                received[i] = -1

        readers = [asyncio.create_task(read(i)) for i in range(count)]
        await asyncio.sleep(0.5)
        try:
            yield received
        finally:
            for task in readers:
                task.cancel()


async def _throughput(
    server: Server, controller: str, seconds: float, big: dict[str, Any] | None = None
) -> float:
    """Reports acknowledged a second from 4 controllers reporting back to back; with `big`, one
    more reports that state ten times a second (not counted)."""
    deadline = time.monotonic() + seconds
    acked = 0

    async def one(c: int) -> None:
        nonlocal acked
        async with token_client(server.url, controller) as client:
            i = 0
            while time.monotonic() < deadline:
                answer = (await client.post("/graphql", json=_report(f"w-{c}-{i % 10}"))).json()
                assert "errors" not in answer, answer
                acked, i = acked + 1, i + 1

    async def big_one(state: dict[str, Any]) -> None:  # at a steady pace, the same every round
        async with token_client(server.url, controller) as client:
            due = time.monotonic()
            while time.monotonic() < deadline:
                body = {"query": REPORT, "variables": {"input": state}}
                assert "errors" not in (await client.post("/graphql", json=body)).json()
                due += 0.1
                await asyncio.sleep(max(0.0, due - time.monotonic()))

    started = time.monotonic()
    await asyncio.gather(*(one(c) for c in range(4)), *([big_one(big)] if big else []))
    return acked / (time.monotonic() - started)


def _cut_off(log: Path) -> int:
    """How many subscribers the server has cut off as too slow, from its log (a small file)."""
    return log.read_text().count("too slow")


async def _stalled(
    server: Server, log: Path, admin: str, controller: str, args: Any
) -> dict[str, Any]:
    """The server's CPU per acknowledged report with no subscriber, and with one subscriber of a
    cluster whose events are big (about 1.5 MB) that never reads: rounds interleaved, medians
    compared. After each round with it, the big cluster is reported until the server (its log at
    `log`) has cut the subscriber off, and the subscriber reads what it was sent."""
    big = big_report("big-events")
    async with token_client(server.url, controller) as client:
        body = {"query": REPORT, "variables": {"input": big}}
        big_id = (await client.post("/graphql", json=body)).json()["data"]["reportCluster"]["id"]
    pid = server.process.pid

    async def cpu_per_report() -> float:
        before = cpu_seconds(pid)
        rate = await _throughput(server, controller, args.seconds, big)
        after = cpu_seconds(pid)
        assert before is not None, "the server's CPU time is not readable"
        assert after is not None, "the server's CPU time is not readable"
        return (after - before) / (rate * args.seconds)

    cost: dict[str, list[float]] = {"alone": [], "stalled": []}
    cut_off: list[int | None] = []
    for _ in range(args.rounds):
        cost["alone"].append(await cpu_per_report())
        stalled = Stalled(server.url, admin, BIG_EVENTS, {"filter": {"ids": [big_id]}})
        try:
            await asyncio.sleep(0.3)
            cost["stalled"].append(await cpu_per_report())
            async with token_client(server.url, controller) as client:
                while _cut_off(log) <= len(cut_off):
                    await client.post("/graphql", json=body)
            cut_off.append((await asyncio.to_thread(stalled.drain, 60.0))[1])
        finally:
            stalled.sock.close()
    alone = statistics.median(cost["alone"])
    return {
        "cpu_ms_per_report": {k: [round(c * 1000, 2) for c in v] for k, v in cost.items()},
        "cpu_ratio": round(statistics.median(cost["stalled"]) / alone, 3),
        "close_codes": cut_off,  # 4413: too slow; None: cut before its close frame got out
    }


async def _on_sqlite(server: Server, admin: str, controller: str, args: Any) -> dict[str, Any]:
    latency = await _latencies(server.url, server.url, admin, controller, args.reports)
    out: dict[str, Any] = {"latency": latency}
    pid = server.process.pid
    before = _rss_kib(pid)
    async with _subscribers(server, admin, args.subscribers, lambda i: _one(1)):
        await asyncio.sleep(1)
        out["idle_kib_per_subscriber"] = round((_rss_kib(pid) - before) / args.subscribers, 1)
    # `own`: each subscriber watches one cluster of its own (a cluster's page in a dashboard);
    # `all`: each watches every change (the fleet's page), so every report is an event for each.
    kinds = {"own": lambda i: _one(i % 100 + 1), "all": lambda i: {}}
    rates: dict[str, list[float]] = {"none": [], "own": [], "all": []}
    for _ in range(args.rounds):
        for kind in rates:
            if kind == "none":
                rates[kind].append(await _throughput(server, controller, args.seconds))
                continue
            async with _subscribers(server, admin, args.subscribers, kinds[kind]) as received:
                rates[kind].append(await _throughput(server, controller, args.seconds))
            out[f"{kind}: events received, cut off (last round)"] = [
                sum(n for n in received if n > 0),
                received.count(-1),
            ]
    out["reports_per_s"] = {k: [round(r, 1) for r in v] for k, v in rates.items()}
    none = statistics.median(rates["none"])
    out["throughput_ratio"] = {k: round(statistics.median(rates[k]) / none, 3) for k in kinds}
    return out


def _one(cluster_id: int) -> dict[str, Any]:
    return {"filter": {"ids": [str(cluster_id)]}}


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--reports", type=int, default=300, help="for the latency")
    p.add_argument("--seconds", type=float, default=5.0, help="per throughput round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.subscribers, args.reports, args.seconds, args.rounds = 20, 10, 0.5, 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket per subscriber
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.subscribers)), hard))
    figures: dict[str, Any] = {"environment": environment(subscribers=args.subscribers)}
    with tempfile.TemporaryDirectory(prefix="clusterql-bench-") as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'live.db'}"
        admin, controller = asyncio.run(_seeded(url))
        with serve_process(unthrottled({"CLUSTERQL_DATABASE_URL": url, **ENV})) as server:
            figures["sqlite"] = asyncio.run(_on_sqlite(server, admin, controller, args))
        log = Path(scratch) / "server.log"
        with serve_process(unthrottled({"CLUSTERQL_DATABASE_URL": url}), output=log) as server:
            figures["sqlite"]["stalled"] = asyncio.run(
                _stalled(server, log, admin, controller, args)
            )
    with postgres_server() as pg:
        url = pg.url
        admin, controller = asyncio.run(_seeded(url))
        env = unthrottled({"CLUSTERQL_DATABASE_URL": url, **ENV})
        with serve_process(env) as listening, serve_process(env) as reporting:
            figures["postgresql_across_processes"] = asyncio.run(
                _latencies(reporting.url, listening.url, admin, controller, args.reports)
            )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
