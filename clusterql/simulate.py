"""Fake controllers: each registers a cluster and keeps reporting changing node states over HTTP.

For demos and load: `clusterql simulate --url URL [--token TOKEN] --controllers K --interval S`.
Each controller owns one plausible cluster (`<prefix>-<k>`, from `clusterql.fleet`; with `--demo`,
one of the demo fleet's, so that what `serve --demo` shows changes) and sends its
full state every `interval` seconds (with jitter): node states flip, nodes come and go, the
controller restarts now and then. Without `--token`, each fake controller gets a Controller
token of its own bound to its cluster's name (`bound_tokens`), as real ones are provisioned.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.fleet import changed, demo_fleet, plausible_cluster
from graph.scalars import format_timestamp
from models import tokens
from models.bindings import binding, literal
from models.engine import write_transaction
from models.records import ClusterState, ControllerStatus
from models.tokens import Permission

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


def controller_names(prefix: str, controllers: int) -> list[str]:
    """The cluster names of `controllers` fake controllers: `<prefix>-000`, ..."""
    return [f"{prefix}-{k:03d}" for k in range(controllers)]


def fleet_names(prefix: str, controllers: int, *, demo: bool = False) -> list[str]:
    """The cluster names `run` reports: the demo fleet's first ones, or `controller_names`."""
    if demo:
        return [state.name for state in demo_fleet(datetime.now(UTC))[:controllers]]
    return controller_names(prefix, controllers)


@dataclass(frozen=True, slots=True)
class BoundTokens:
    """Controller tokens made for one simulation: each cluster name's secret, and their names."""

    secrets: dict[str, str]
    token_names: list[str]


async def bound_tokens(engine: AsyncEngine, names: Sequence[str], now: datetime) -> BoundTokens:
    """One Controller token per cluster name, bound to exactly that name (one statement)."""
    run = now.strftime("%Y%m%dT%H%M%S.%fZ")
    token_names = [f"simulate-{run}-{k}" for k in range(len(names))]
    specs = [
        (token, [Permission.CONTROLLER], binding([literal(name)]))
        for token, name in zip(token_names, names, strict=True)
    ]
    secrets = await tokens.issue_each(engine, specs, now=now)
    return BoundTokens(dict(zip(names, secrets, strict=True)), token_names)


async def revoke_tokens(engine: AsyncEngine, token_names: Sequence[str]) -> None:
    """Revoke the tokens a simulation made, once it is over."""
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        for name in token_names:
            await tokens.revoke(conn, name, now)


async def _send(
    client: httpx.AsyncClient, controller: FakeController, secret: str, stats: Stats
) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/graphql",
            json={"query": REPORT, "variables": {"input": controller.report()}},
            headers={"Authorization": f"Bearer {secret}"},
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
    token: str | Mapping[str, str],
    *,
    controllers: int,
    interval: float,
    duration: float | None = None,
    prefix: str = "sim",
    seed: int | None = None,
    silent: int = 0,
    demo: bool = False,
) -> Stats:
    """Run `controllers` fake controllers until `duration` seconds pass (forever if None);
    with `demo`, the controllers of the demo fleet's first `controllers` clusters (`serve
    --demo`).

    `token`: the secret every controller sends (an Admin token, or a Controller token bound to
    their names), or each cluster name's own secret (`bound_tokens`).

    The first `silent` of them report once and then never again, as dead controllers do: their
    clusters go stale after CLUSTERQL_STALE_AFTER, still saying RUNNING."""
    rng = random.Random(seed)
    if demo:
        fleet = [
            FakeController(state.name, random.Random(rng.random()), state)
            for state in demo_fleet(datetime.now(UTC))[:controllers]
        ]
    else:
        fleet = [
            FakeController(name, random.Random(rng.random()))
            for name in controller_names(prefix, controllers)
        ]
    stats = Stats()
    deadline = None if duration is None else time.monotonic() + duration
    limits = httpx.Limits(max_connections=min(controllers, 64))

    async def loop(controller: FakeController, dies: bool) -> None:
        secret = token if isinstance(token, str) else token[controller.name]
        await asyncio.sleep(rng.uniform(0, interval))  # spread the first reports
        while deadline is None or time.monotonic() < deadline:
            await _send(client, controller, secret, stats)
            if dies:
                return
            controller.step()
            await asyncio.sleep(interval * rng.uniform(0.8, 1.2))

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(loop(c, k < silent) for k, c in enumerate(fleet)))
    return stats
