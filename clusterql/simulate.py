"""Fake controllers: each registers a cluster and keeps reporting changing node states over HTTP.

For demos and load: `clusterql simulate --url URL --token TOKEN --controllers K --interval S`.
Each controller owns one cluster (`<prefix>-<k>`) and sends its full state every `interval`
seconds (with jitter): node states flip, nodes come and go, the controller restarts now and then.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

REPORT = """
mutation Simulated($input: ClusterReport!) {
  reportCluster(input: $input) { id nodesCount failedNodesCount }
}
"""
_STATUSES = ["MONITORED", "MONITORED_WITH_SENSOR", "FAILED", "INSTALLATION_FAILED", "DISABLED"]
_HEALTHY_WEIGHTS = [40, 50, 4, 3, 3]
_PROVIDERS = {
    "aws": ["us-east-1", "eu-west-1", "ap-southeast-2"],
    "gcp": ["europe-west4", "us-central1"],
    "azure": ["westeurope", "eastus"],
    "kubernetes": ["dc-1", "dc-2"],
}


@dataclass
class Stats:
    """What the simulation did; `latencies` in seconds, one per acknowledged report."""

    acknowledged: int = 0
    refused: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class FakeController:
    """One controller's cluster, mutated a little before every report."""

    name: str
    rng: random.Random
    provider: str = ""
    regions: list[str] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)  # name -> status
    running: bool = True
    _next_node: int = 0

    def __post_init__(self) -> None:
        self.provider = self.rng.choice(list(_PROVIDERS))
        self.regions = self.rng.sample(_PROVIDERS[self.provider], k=self.rng.randint(1, 2))
        for _ in range(self.rng.randint(5, 40)):
            self._add_node()

    def _add_node(self) -> None:
        self._next_node += 1
        node = f"{self.name}-node-{self._next_node}"
        self.nodes[node] = self.rng.choices(_STATUSES, _HEALTHY_WEIGHTS)[0]

    def step(self) -> None:
        for node in self.rng.sample(list(self.nodes), k=min(3, len(self.nodes))):
            self.nodes[node] = self.rng.choices(_STATUSES, _HEALTHY_WEIGHTS)[0]
        if self.rng.random() < 0.2:
            self._add_node()
        if self.nodes and self.rng.random() < 0.15:
            del self.nodes[self.rng.choice(list(self.nodes))]
        if self.rng.random() < 0.05:
            self.running = not self.running

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "regions": self.regions,
            "controllerVersion": "3.2.0",
            "controllerStatus": "RUNNING" if self.running else "STOPPED",
            "nodes": [
                {
                    "name": node,
                    "hostname": node,
                    "status": status,
                    "sensorInstalled": status == "MONITORED_WITH_SENSOR",
                    "sensorVersion": "5.4.1" if status == "MONITORED_WITH_SENSOR" else None,
                    "region": self.regions[i % len(self.regions)],
                    "architecture": "arm64" if i % 3 == 0 else "amd64",
                    "internalDns": f"{node}.internal",
                    "internalIp": f"10.{(i >> 8) % 256}.{i % 256}.{(i * 7) % 250 + 2}",
                }
                for i, (node, status) in enumerate(sorted(self.nodes.items()))
            ],
        }


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
) -> Stats:
    """Run `controllers` fake controllers until `duration` seconds pass (forever if None)."""
    rng = random.Random(seed)
    fleet = [
        FakeController(f"{prefix}-{k:03d}", random.Random(rng.random())) for k in range(controllers)
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
