"""Fake controllers: each registers a cluster and keeps reporting changing node states over HTTP.

For demos and load: `clusterql simulate --url URL --token TOKEN --controllers K --interval S`.
Each controller owns one plausible cluster (`<prefix>-<k>`, from `clusterql.fleet`; with `--demo`,
one of the demo fleet's, so that what `serve --demo` shows changes) and sends its
full state every `interval` seconds (with jitter): node states flip, nodes come and go, the
controller restarts now and then.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import httpx

from clusterql.fleet import changed, demo_fleet, plausible_cluster
from graph.scalars import format_timestamp
from models.records import ClusterState, ControllerStatus

REPORT = """
mutation Simulated($input: ClusterReport!) {
  reportCluster(input: $input) { id nodesCount failedNodesCount }
}
"""
POOL = 60  # nodes a fake controller's cluster may ever have


@dataclass
class Stats:
    """What the simulation did; `latencies` in seconds, one per acknowledged report."""

    acknowledged: int = 0
    refused: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def as_report(state: ClusterState) -> dict[str, Any]:
    """`state` as the `ClusterReport` input of `reportCluster`, in GraphQL's names and values."""
    return _as_input(state)  # type: ignore[no-any-return]


def _as_input(value: Any) -> Any:
    if is_dataclass(value):
        return {_camel(f.name): _as_input(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list):
        return [_as_input(item) for item in value]
    if isinstance(value, Enum):
        return value.name
    return format_timestamp(value) if isinstance(value, datetime) else value


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


@dataclass
class FakeController:
    """One controller's cluster (a plausible one, `clusterql.fleet`), changed a little before
    every report: a few nodes change state, now and then one comes or goes, or the controller
    stops or starts again."""

    name: str
    rng: random.Random
    start: ClusterState | None = None  # an existing cluster (the demo fleet's) to go on with
    cluster: ClusterState = field(init=False)
    present: set[int] = field(init=False)  # which nodes of `cluster` it has now

    def __post_init__(self) -> None:
        if self.start is not None:
            self.cluster = self.start
            self.present = set(range(len(self.start.nodes)))
            return
        self.cluster = plausible_cluster(self.rng, self.name, POOL, datetime.now(UTC))
        self.present = set(range(self.rng.randint(5, 40)))

    def step(self) -> None:
        nodes, now = self.cluster.nodes, datetime.now(UTC)
        for i in self.rng.sample(sorted(self.present), k=min(3, len(self.present))):
            nodes[i] = changed(self.rng, nodes[i], now)
        if self.rng.random() < 0.2 and len(self.present) < len(nodes):
            self.present.add(min(set(range(len(nodes))) - self.present))
        if self.present and self.rng.random() < 0.15:
            self.present.discard(self.rng.choice(sorted(self.present)))
        if self.rng.random() < 0.05:
            running = self.cluster.controller_status is ControllerStatus.RUNNING
            status = ControllerStatus.STOPPED if running else ControllerStatus.RUNNING
            self.cluster = replace(self.cluster, controller_status=status)

    def report(self) -> dict[str, Any]:
        nodes = [self.cluster.nodes[i] for i in sorted(self.present)]
        return as_report(replace(self.cluster, nodes=nodes))


async def _send(client: httpx.AsyncClient, controller: FakeController, stats: Stats) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/graphql", json={"query": REPORT, "variables": {"input": controller.report()}}
        )
        payload = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        stats.failed += 1
        stats.errors.append(f"{controller.name}: {exc!r}")
        return
    if response.status_code == 200 and not payload.get("errors"):
        stats.acknowledged += 1
        stats.latencies.append(time.perf_counter() - started)
    else:
        stats.refused += 1
        stats.errors.append(f"{controller.name}: {response.status_code} {payload}")


async def run(
    url: str,
    token: str,
    *,
    controllers: int,
    interval: float,
    duration: float | None = None,
    prefix: str = "sim",
    seed: int | None = None,
    demo: bool = False,
) -> Stats:
    """Run `controllers` fake controllers until `duration` seconds pass (forever if None);
    with `demo`, the controllers of the demo fleet's first `controllers` clusters (`serve
    --demo`), which an Admin token may report."""
    rng = random.Random(seed)
    if demo:
        fleet = [
            FakeController(state.name, random.Random(rng.random()), state)
            for state in demo_fleet(datetime.now(UTC))[:controllers]
        ]
    else:
        fleet = [
            FakeController(f"{prefix}-{k:03d}", random.Random(rng.random()))
            for k in range(controllers)
        ]
    stats = Stats()
    deadline = None if duration is None else time.monotonic() + duration
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=min(controllers, 64))

    async def loop(controller: FakeController) -> None:
        await asyncio.sleep(rng.uniform(0, interval))  # spread the first reports
        while deadline is None or time.monotonic() < deadline:
            await _send(client, controller, stats)
            controller.step()
            await asyncio.sleep(interval * rng.uniform(0.8, 1.2))

    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=30, limits=limits
    ) as client:
        await asyncio.gather(*(loop(c) for c in fleet))
    return stats
