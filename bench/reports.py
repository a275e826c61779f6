"""Benchmark of controller reports (SPEC §8) on SQLite over HTTP, run on demand.

One run seeds a temporary SQLite database (2,000 clusters x 20 nodes with `support.seed`, an
Admin token and 9 Controller tokens), serves the real app (`clusterql.app.create_app`) from one
uvicorn process on 127.0.0.1, and measures:

1. **One 5,000-node report** (`reportCluster`) in five scenarios, each repetition running them in
   this order (medians and p90 over `--reps`, after one untimed repetition):
   - `register`: a new cluster name (removed afterwards, untimed);
   - `replace`:  an existing cluster whose 5,000 node names all change (5,000 deletes, inserts);
   - `update5`:  the same names, 5% of the nodes change state (a controller's steady state);
   - `same`:     the very same report again (only `controller_last_updated` changes);
   - `update5+nodes`: as `update5`, but the answer also selects the 5,000 nodes (output cost).
   Answers select id and counts, as `clusterql simulate` does, unless said otherwise. In every
   repetition the five run three ways, one after the other, on the same database file: over
   HTTP; in-process through `schema.execute` (GraphQL without HTTP; the server idles); through
   `models.reports.report_cluster` alone (the model; input already parsed). Then the steps
   before the model are timed alone on one body: strict JSON decoding (as `/graphql` does it),
   graphql-core's variable coercion, Strawberry's input conversion, the `to_state` checks.
2. **Write throughput**: 8 controllers, each with its own token, cluster and connection, send
   100-node full reports back to back (5% of the node states change each time) for 20 s from a
   separate process: reports per second, latency p50/p90, the server's CPU use.
3. **Reads under write load**: one client reads `POST /runtime/api/v1/clusters` with
   `{"limit": 100, "return_nodes": true}` (Admin), one request at a time, in alternating phases
   idle, loaded, idle, loaded (`--rounds` pairs of `--phase-seconds`); in loaded phases the
   8 controllers of (2) run from their own process. Read p50/p90 per condition, their ratio,
   and the writers' own rate meanwhile.

The writers run in their own process, so the reader's timings do not include waiting for the
writers' event loop; on a 2-core machine the server, the writers and the reader still share
the cores, so the load average is printed at the start and after each part. Every answer is
checked (counts, and node names when selected) before its time is kept.

    .venv/bin/python bench/reports.py [--out figures.json]   # 2 to 4 minutes on 2 cores
    .venv/bin/python bench/reports.py --profile              # cProfile of the 5,000-node path
    .venv/bin/python bench/reports.py --help                 # --reps, --write-seconds, ...
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.types.arguments import convert_argument
from support import (
    Server,
    add_serve_arguments,
    add_token,
    cpu_seconds,
    environment,
    load_average,
    percentile,
    run_uvicorn,
    scratch_file,
    script_server,
    seed,
    wide_console,
)

from clusterql.app import create_app
from clusterql.settings import Settings
from graph.context import build_context
from graph.cursors import CursorCodec
from graph.inputs import ClusterReport
from graph.schema import schema
from models import removal, service_keys, tokens
from models.engine import create_engine, read_transaction, write_transaction
from models.records import RUNNING_STATUSES, ClusterState, NodeStatus
from models.reports import report_cluster
from models.tokens import Permission, Principal, digest
from rest_shim.body import decode_json
from rest_shim.routes import PREFIX

REPORT = """
mutation Report($input: ClusterReport!) {
  reportCluster(input: $input) { id nodesCount runningNodesCount failedNodesCount }
}
"""
REPORT_WITH_NODES = """
mutation ReportWithNodes($input: ClusterReport!) {
  reportCluster(input: $input) {
    id nodesCount runningNodesCount failedNodesCount
    nodes { id name status monitoredAt }
  }
}
"""
REMOVE = "mutation Remove($id: ID!) { removeCluster(id: $id) }"
READ_PATH = f"{PREFIX}/clusters"
READ_BODY = orjson.dumps({"limit": 100, "return_nodes": True})
READ_LIMIT = 100
SCENARIOS = ("register", "replace", "update5", "same", "update5+nodes")
JSON_HEADERS = {"Content-Type": "application/json"}


# --- reports ---------------------------------------------------------------------------------

# Mostly healthy nodes, as in a real fleet.
_WEIGHTS = {
    NodeStatus.MONITORED_WITH_SENSOR: 80,
    NodeStatus.MONITORED: 12,
    NodeStatus.FAILED: 3,
    NodeStatus.INSTALLATION_FAILED: 2,
    NodeStatus.DISABLED: 3,
}
_SENSOR = (NodeStatus.MONITORED_WITH_SENSOR, NodeStatus.FAILED)


def _status(rng: random.Random) -> NodeStatus:
    return rng.choices(list(_WEIGHTS), list(_WEIGHTS.values()))[0]


def _with_status(node: dict[str, Any], status: NodeStatus, i: int) -> dict[str, Any]:
    installed = status in _SENSOR
    return {
        **node,
        "status": status.name,
        "sensorInstalled": installed,
        "sensorVersion": f"2.{i % 4}.{i % 10}" if installed else None,
        "sensorLastUpdated": f"2026-11-30T08:{i % 60:02d}:00.000000Z" if installed else None,
    }


@dataclass
class FakeCluster:
    """A controller's cluster as `ClusterReport` input; `change` flips a share of node states."""

    name: str
    size: int
    rng: random.Random
    prefix: str = "node"
    regions: list[str] = field(default_factory=lambda: ["eu-west-1", "us-east-1"])
    nodes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rename(self.prefix)

    def rename(self, prefix: str) -> None:
        """Every node gets a new name (and new states): a report that replaces all nodes."""
        self.prefix = prefix
        self.nodes = []
        for i in range(self.size):
            ip = f"10.{(i >> 8) % 256}.{i % 256}.{(i * 7) % 250 + 2}"
            region = self.regions[i % len(self.regions)]
            node = {
                "name": f"{prefix}-{i:05d}",
                "hostname": f"ip-{ip.replace('.', '-')}",
                "region": region,
                "architecture": "arm64" if i % 5 == 0 else "amd64",
                "internalDns": f"ip-{ip.replace('.', '-')}.{region}.compute.internal",
                "internalIp": ip,
            }
            self.nodes.append(_with_status(node, _status(self.rng), i))

    def change(self, share: float) -> None:
        """`share` of the nodes, picked at random, move to another state."""
        for i in self.rng.sample(range(len(self.nodes)), k=round(share * len(self.nodes))):
            current = NodeStatus[self.nodes[i]["status"]]
            status = self.rng.choice([s for s in NodeStatus if s != current])
            self.nodes[i] = _with_status(self.nodes[i], status, i)

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": "aws",
            "regions": self.regions,
            "controllerVersion": "3.2.0",
            "controllerStatus": "RUNNING",
            "nodes": list(self.nodes),
        }

    def expected(self) -> tuple[int, int, int]:
        """(nodesCount, runningNodesCount, failedNodesCount) once this report applies."""
        statuses = [NodeStatus[n["status"]] for n in self.nodes]
        running = sum(1 for s in statuses if s in RUNNING_STATUSES)
        return len(statuses), running, statuses.count(NodeStatus.FAILED)


def body_of(query: str, report: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": query, "variables": {"input": report}})


def check_answer(answer: dict[str, Any], cluster: FakeCluster) -> None:
    got = (answer["nodesCount"], answer["runningNodesCount"], answer["failedNodesCount"])
    assert got == cluster.expected(), (cluster.name, got, cluster.expected())
    if "nodes" in answer:
        names = sorted(n["name"] for n in answer["nodes"])
        assert names == sorted(n["name"] for n in cluster.nodes), cluster.name


@dataclass
class Step:
    """One request of a repetition: which scenario, which report, which answer."""

    scenario: str
    cluster: FakeCluster
    query: str
    remove_after: bool = False


def repetition(rep: int, main: FakeCluster, size: int, tag: str) -> Iterator[Step]:
    """The five scenarios in order; `main` is changed between them (the reports are its states).

    `tag` and `rep` make the node names of `replace` differ from every earlier report's.
    """
    yield Step("register", FakeCluster(f"big-new-{tag}{rep + 1}", size, main.rng), REPORT, True)
    main.rename(f"{tag}{rep + 1}")
    yield Step("replace", main, REPORT)
    main.change(0.05)
    yield Step("update5", main, REPORT)
    yield Step("same", main, REPORT)
    main.change(0.05)
    yield Step("update5+nodes", main, REPORT_WITH_NODES)


def _ms(seconds: float) -> float:
    return seconds * 1000.0


# --- seeding tokens --------------------------------------------------------------------------


@dataclass
class Secrets:
    admin: str
    big: str  # the controller that sends the 5,000-node reports
    controllers: list[str]  # one per concurrent controller


async def add_controller_tokens(url: str, count: int) -> list[str]:
    engine = create_engine(url)
    try:
        async with write_transaction(engine) as conn:
            return [
                await add_token(conn, f"bench-controller-{k}", Permission.CONTROLLER)
                for k in range(count)
            ]
    finally:
        await engine.dispose()


# --- the server ------------------------------------------------------------------------------


def serve(db: Path, port: int) -> None:
    run_uvicorn(create_app(Settings(database_url=f"sqlite+aiosqlite:///{db}")), port)


# --- 1. big reports: over HTTP, in-process GraphQL, the model alone, interleaved -------------


async def principal_of(engine: AsyncEngine, secret: str) -> Principal:
    async with read_transaction(engine) as conn:
        found = await tokens.find_active(conn, digest(secret), datetime.now(UTC))
    assert found is not None
    return found[0]


_OPERATION = parse(REPORT).definitions[0]
assert isinstance(_OPERATION, OperationDefinitionNode)


def coerce(report: dict[str, Any]) -> Any:
    """graphql-core's coercion of the `input` variable, as `schema.execute` does it."""
    values = get_variable_values(schema._schema, _OPERATION.variable_definitions, {"input": report})
    assert not isinstance(values, list), [str(e)[:300] for e in values]
    return values.coerced["input"]


def to_report(coerced: Any) -> ClusterReport:
    """Strawberry's conversion of the coerced value into the resolver's `ClusterReport`."""
    converted = convert_argument(
        coerced, ClusterReport, schema.schema_converter.scalar_registry, schema.config
    )
    assert isinstance(converted, ClusterReport)
    return converted


def parse_report(report: dict[str, Any]) -> ClusterState:
    """What the server does with a report before the model sees it."""
    return to_report(coerce(report)).to_state()


@dataclass
class BigTimings:
    http: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    graphql: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    model: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    parts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    request_bytes: dict[str, int] = field(default_factory=dict)


async def big_reports(
    srv: Server, db: Path, secrets: Secrets, args: argparse.Namespace
) -> BigTimings:
    """Per repetition: the five scenarios over HTTP, then in-process through `schema.execute`,
    then through the model alone (the server idles meanwhile), then the parts before the model
    timed alone, so that the machine's noise hits every variant alike. All on `big-main`.
    """
    out = BigTimings()
    controller = {"Authorization": f"Bearer {secrets.big}", **JSON_HEADERS}
    admin = {"Authorization": f"Bearer {secrets.admin}", **JSON_HEADERS}
    main = FakeCluster("big-main", args.big_nodes, random.Random(5000), prefix="first")
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        principal = await principal_of(engine, secrets.big)
        cursors = CursorCodec(await service_keys.get_or_create(engine, "cursor"))
        async with httpx.AsyncClient(base_url=srv.url, timeout=300) as client:

            async def over_http(step: Step) -> float:
                body = body_of(step.query, step.cluster.report())
                out.request_bytes[step.scenario] = len(body)
                t0 = time.perf_counter()
                response = await client.post("/graphql", content=body, headers=controller)
                elapsed = time.perf_counter() - t0
                payload = response.json()
                assert response.status_code == 200, payload
                assert not payload.get("errors"), payload
                answer = payload["data"]["reportCluster"]
                check_answer(answer, step.cluster)
                if step.remove_after:
                    removal_body = {"query": REMOVE, "variables": {"id": answer["id"]}}
                    removed = await client.post(
                        "/graphql", content=orjson.dumps(removal_body), headers=admin
                    )
                    assert removed.json() == {"data": {"removeCluster": True}}, removed.text
                return elapsed

            async def in_graphql(step: Step) -> float:
                variables = {"input": step.cluster.report()}
                context = build_context(engine, cursors, principal, "bench")
                t0 = time.perf_counter()
                result = await schema.execute(step.query, variables, context)
                elapsed = time.perf_counter() - t0
                assert not result.errors, result.errors
                assert result.data
                answer = result.data["reportCluster"]
                check_answer(answer, step.cluster)
                if step.remove_after:
                    assert await removal.remove(engine, int(answer["id"]), datetime.now(UTC))
                return elapsed

            async def in_model(step: Step) -> float:
                state = parse_report(step.cluster.report())
                t0 = time.perf_counter()
                record, _ = await report_cluster(engine, state, principal, datetime.now(UTC))
                elapsed = time.perf_counter() - t0
                assert record.nodes_count == step.cluster.expected()[0]
                if step.remove_after:
                    assert await removal.remove(engine, record.id, datetime.now(UTC))
                return elapsed

            await over_http(Step("setup", main, REPORT))  # registers big-main
            variants = (("http", over_http), ("graphql", in_graphql), ("model", in_model))
            for rep in range(-1, args.reps):  # repetition -1 warms up, untimed
                for name, run in variants:
                    for step in repetition(rep, main, args.big_nodes, name):
                        if name == "model" and step.query is REPORT_WITH_NODES:
                            continue  # the model does not know what the answer selects
                        elapsed = await run(step)
                        if rep >= 0:
                            getattr(out, name)[step.scenario].append(_ms(elapsed))
                if rep >= 0:
                    time_parts(main, out.parts)
    finally:
        await engine.dispose()
    return out


def time_parts(main: FakeCluster, parts: dict[str, list[float]]) -> None:
    """The steps of the request path before the model, on one body, each timed alone."""
    body = body_of(REPORT, main.report())
    t0 = time.perf_counter()
    decoded = decode_json(body)
    t1 = time.perf_counter()
    coerced = coerce(decoded["variables"]["input"])
    t2 = time.perf_counter()
    converted = to_report(coerced)
    t3 = time.perf_counter()
    converted.to_state()
    t4 = time.perf_counter()
    parts["JSON decoding (strict, stdlib)"].append(_ms(t1 - t0))
    parts["graphql-core variable coercion"].append(_ms(t2 - t1))
    parts["Strawberry input conversion"].append(_ms(t3 - t2))
    parts["to_state checks"].append(_ms(t4 - t3))


# --- 2 and 3. concurrent controllers, readers ------------------------------------------------


async def controllers_main() -> None:
    """The write load, in its own process: config on stdin, `ready`, wait for `go`, stats out."""
    config = json.loads(await asyncio.to_thread(sys.stdin.readline))
    rng = random.Random(config["seed"])
    fleet = [
        FakeCluster(f"bench-controller-{k}", config["nodes"], random.Random(rng.random()))
        for k in range(len(config["secrets"]))
    ]
    latencies: list[float] = []
    errors: list[str] = []
    clients = [
        httpx.AsyncClient(
            base_url=config["url"],
            timeout=60,
            headers={"Authorization": f"Bearer {secret}", **JSON_HEADERS},
        )
        for secret in config["secrets"]
    ]

    async def send(client: httpx.AsyncClient, cluster: FakeCluster) -> float | None:
        body = body_of(REPORT, cluster.report())
        t0 = time.perf_counter()
        try:
            response = await client.post("/graphql", content=body)
            elapsed = time.perf_counter() - t0
            payload = response.json()
            assert response.status_code == 200, payload
            assert not payload.get("errors"), payload
            check_answer(payload["data"]["reportCluster"], cluster)
        except (httpx.HTTPError, ValueError, AssertionError) as exc:
            errors.append(f"{cluster.name}: {exc!r}"[:500])
            return None
        cluster.change(config["change"])
        return elapsed

    # Untimed: registers the clusters on the first run, opens the connections.
    await asyncio.gather(*(send(c, f) for c, f in zip(clients, fleet, strict=True)))
    print("ready", flush=True)
    assert (await asyncio.to_thread(sys.stdin.readline)).strip() == "go"
    started = time.perf_counter()
    deadline = started + config["seconds"]

    async def loop(client: httpx.AsyncClient, cluster: FakeCluster) -> None:
        while time.perf_counter() < deadline:
            elapsed = await send(client, cluster)
            if elapsed is not None:
                latencies.append(_ms(elapsed))

    await asyncio.gather(*(loop(c, f) for c, f in zip(clients, fleet, strict=True)))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    print(json.dumps({"latencies_ms": latencies, "errors": errors, "seconds": elapsed}))


@dataclass
class LoadResult:
    latencies_ms: list[float]
    errors: list[str]
    seconds: float
    server_cpu_seconds: float | None


async def with_write_load(
    server: Server,
    secrets: Secrets,
    seconds: float,
    args: argparse.Namespace,
    seed: int,
    during: Callable[[], Awaitable[Any]] | None = None,
) -> tuple[LoadResult, Any]:
    """Run the controllers' process for `seconds`; `during` runs meanwhile in this process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--controllers-process",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    config = {
        "url": server.url,
        "secrets": secrets.controllers,
        "nodes": args.report_nodes,
        "change": 0.05,
        "seconds": seconds,
        "seed": seed,
    }
    proc.stdin.write(json.dumps(config).encode() + b"\n")
    await proc.stdin.drain()
    ready = await proc.stdout.readline()
    assert ready == b"ready\n", ready
    cpu0 = cpu_seconds(server.pid)
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    side = await during() if during is not None else None
    out = await proc.stdout.read()
    cpu1 = cpu_seconds(server.pid)
    assert await proc.wait() == 0, "the controllers' process failed"
    stats = json.loads(out)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return LoadResult(stats["latencies_ms"], stats["errors"], stats["seconds"], cpu), side


async def read_for(client: httpx.AsyncClient, seconds: float) -> list[float]:
    """Read the first page with nodes back to back for `seconds`; latencies in ms."""
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        response = await client.post(READ_PATH, content=READ_BODY)
        elapsed = time.perf_counter() - t0
        response.raise_for_status()
        assert len(response.json()["clusters"]) == READ_LIMIT
        out.append(_ms(elapsed))
    return out


async def writes_and_reads(
    server: Server, secrets: Secrets, args: argparse.Namespace
) -> dict[str, Any]:
    # 2. Write throughput alone.
    write, _ = await with_write_load(server, secrets, args.write_seconds, args, seed=1)
    # 3. Reads, alternating idle and loaded phases.
    headers = {"Authorization": f"Bearer {secrets.admin}", **JSON_HEADERS}
    reads: dict[str, list[float]] = {"idle": [], "loaded": []}
    loads: list[LoadResult] = []
    phases: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        await read_for(client, 2.0)  # warm-up, untimed
        for r in range(args.rounds):
            idle = await read_for(client, args.phase_seconds)
            reads["idle"] += idle
            phases.append({"phase": "idle", "reads": len(idle), "load_average": load_average()})

            async def reader() -> list[float]:
                await asyncio.sleep(0.5)  # the writers are at full speed by then
                return await read_for(client, args.phase_seconds)

            load, loaded = await with_write_load(
                server, secrets, args.phase_seconds + 1.0, args, seed=100 + r, during=reader
            )
            reads["loaded"] += loaded
            loads.append(load)
            phases.append(
                {
                    "phase": "loaded",
                    "reads": len(loaded),
                    "reports": len(load.latencies_ms),
                    "load_average": load_average(),
                }
            )
    return {"write": write, "reads": reads, "loads": loads, "phases": phases}


# --- profile ---------------------------------------------------------------------------------

# (component, test on "file:function") in order: the first match wins.
_BUCKETS: list[tuple[str, Callable[[str], bool]]] = [
    ("event loop, incl. waiting for aiosqlite's thread", lambda k: "select.epoll" in k),
    ("graphql-core variable coercion", lambda k: "graphql/utilities/coerce" in k),
    ("graphql-core values/execution", lambda k: "graphql/" in k),
    ("Strawberry input conversion", lambda k: "strawberry/types/arguments" in k),
    ("Strawberry other", lambda k: "strawberry/" in k),
    ("graph/inputs.py checks", lambda k: "graph/inputs.py" in k),
    ("graph/scalars.py (timestamps)", lambda k: "graph/scalars.py" in k),
    ("models/ (reports, seeding, clusters)", lambda k: "/models/" in k),
    ("dataclasses / copy (asdict)", lambda k: "dataclasses.py" in k or "copy.py" in k),
    ("SQLAlchemy + aiosqlite (main thread)", lambda k: "sqlalchemy/" in k or "aiosqlite/" in k),
    ("asyncio", lambda k: "/asyncio/" in k),
]


def _bucket(key: str) -> str:
    for name, test in _BUCKETS:
        if test(key):
            return name
    return "builtins and other"


async def profile(db: Path, secrets: Secrets, args: argparse.Namespace) -> None:
    """cProfile of `schema.execute` for the big scenarios, in-process; self time by component."""
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        principal = await principal_of(engine, secrets.big)
        cursors = CursorCodec(await service_keys.get_or_create(engine, "cursor"))
        main = FakeCluster("big-main", args.big_nodes, random.Random(7))
        # Reports are built before profiling (`repetition` changes `main` between its steps).
        work = [
            (step, step.cluster.report())
            for rep in range(-1, args.reps)
            for step in repetition(rep, main, args.big_nodes, "profile")
        ]
        profiler = cProfile.Profile()
        for i, (step, report) in enumerate(work):
            context = build_context(engine, cursors, principal, "bench")
            if i >= len(SCENARIOS):  # the first repetition warms up
                profiler.enable()
            result = await schema.execute(step.query, {"input": report}, context)
            profiler.disable()
            assert not result.errors, result.errors
            assert result.data
            if step.remove_after:
                await removal.remove(
                    engine, int(result.data["reportCluster"]["id"]), datetime.now(UTC)
                )
    finally:
        await engine.dispose()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    runs = len(work) - len(SCENARIOS)
    print(f"cProfile of schema.execute, {runs} big reports ({', '.join(SCENARIOS)})")
    total = _inclusive(raw, "graph/schema.py", "execute")
    print(f"  inclusive time in the main thread, per report: {1000 * total / runs:.0f} ms = 100%")
    for label, where, function in _ENTRY_POINTS:
        seconds = _inclusive(raw, where, function)
        print(f"  {100 * seconds / total:5.1f}%  {label}")
    by_bucket: dict[str, float] = defaultdict(float)
    for (filename, _, function), (_, _, tottime, _, _) in raw.items():
        by_bucket[_bucket(f"{filename}:{function}")] += tottime
    self_total = sum(by_bucket.values())
    print("  self time by component:")
    for name, seconds in sorted(by_bucket.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * seconds / self_total:5.1f}%  {name}")
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


# Where a report's time goes, by inclusive time of these calls (they do not overlap).
_ENTRY_POINTS = [
    ("graphql-core variable coercion", "graphql/execution/values.py", "get_variable_values"),
    ("Strawberry input conversion", "strawberry/types/arguments.py", "convert_arguments"),
    ("ClusterReport.to_state checks", "graph/inputs.py", "to_state"),
    # Coroutines that await SQLAlchemy switch greenlets, which cProfile does not follow: the
    # model's own inclusive time is not measurable here, only that of its helpers.
    ("models.reports._node_values (node rows)", "models/reports.py", "_node_values"),
    ("graphql-core executing the answer", "graphql/execution/executor.py", "execute_fields"),
]


def _inclusive(raw: dict[Any, Any], where: str, function: str) -> float:
    """The largest cumulative time of a function named `function` in a file matching `where`."""
    return max(
        (cum for (f, _, fn), (_, _, _, cum, _) in raw.items() if where in f and fn == function),
        default=0.0,
    )


# --- report ----------------------------------------------------------------------------------


def dist(xs: list[float]) -> dict[str, Any]:
    return {
        "n": len(xs),
        "median_ms": round(statistics.median(xs), 1),
        "p90_ms": round(percentile(xs, 0.9), 1),
        "min_ms": round(min(xs), 1),
        "max_ms": round(max(xs), 1),
    }


def load_figures(load: LoadResult) -> dict[str, Any]:
    xs = load.latencies_ms
    out: dict[str, Any] = {
        "reports": len(xs),
        "seconds": round(load.seconds, 2),
        "reports_per_s": round(len(xs) / load.seconds, 1),
        "latency": dist(xs) if xs else None,
        "errors": len(load.errors),
        "first_errors": load.errors[:3],
    }
    if load.server_cpu_seconds is not None:
        out["server_cpu_share"] = round(load.server_cpu_seconds / load.seconds, 2)
    return out


def summarize(t: BigTimings, rw: dict[str, Any]) -> dict[str, Any]:
    big = {}
    for scenario in SCENARIOS:
        row: dict[str, Any] = {
            "http": dist(t.http[scenario]),
            "graphql_in_process": dist(t.graphql[scenario]),
            "request_bytes": t.request_bytes[scenario],
        }
        if scenario in t.model:
            row["model"] = dist(t.model[scenario])
            row["model_share_of_http"] = round(
                row["model"]["median_ms"] / row["http"]["median_ms"], 2
            )
        big[scenario] = row
    reads = {k: dist(v) for k, v in rw["reads"].items()}
    loaded_writes = LoadResult(
        [x for load in rw["loads"] for x in load.latencies_ms],
        [e for load in rw["loads"] for e in load.errors],
        sum(load.seconds for load in rw["loads"]),
        None,
    )
    return {
        "big_reports": big,
        "parts_before_model": {k: dist(v) for k, v in t.parts.items()},
        "write_throughput": load_figures(rw["write"]),
        "reads": reads,
        "read_ratio_loaded_over_idle": {
            "median": round(reads["loaded"]["median_ms"] / reads["idle"]["median_ms"], 2),
            "p90": round(reads["loaded"]["p90_ms"] / reads["idle"]["p90_ms"], 2),
        },
        "writes_during_loaded_reads": load_figures(loaded_writes),
        "phases": rw["phases"],
    }


def print_report(figures: dict[str, Any]) -> None:
    from rich.table import Table

    console = wide_console(120)
    env = figures["environment"]
    ds = figures["dataset"]
    console.print(
        f"[bold]clusterql reports[/] {env['date']}, {env['cpus']} CPUs ({env['cpu']}), "
        f"Python {env['python']}; SQLite, {ds['clusters']:,} clusters x {ds['nodes']} nodes "
        f"seeded in {ds['seed_seconds']} s"
    )
    big = figures["big_reports"]
    table = Table(
        title=f"one {ds['big_nodes']:,}-node report: median / p90 in ms over {ds['reps']} reps"
    )
    for column in ("scenario", "HTTP median", "p90", "in-process GraphQL", "model", "model/HTTP"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    table.add_column("request KB", justify="right")
    for scenario, row in big.items():
        model = row.get("model")
        table.add_row(
            scenario,
            f"{row['http']['median_ms']:.0f}",
            f"{row['http']['p90_ms']:.0f}",
            f"{row['graphql_in_process']['median_ms']:.0f}",
            f"{model['median_ms']:.0f}" if model else "-",
            f"{row['model_share_of_http']:.2f}" if model else "-",
            f"{row['request_bytes'] / 1024:.0f}",
        )
    console.print(table)
    parts = ", ".join(
        f"{name} {d['median_ms']:.0f} ms" for name, d in figures["parts_before_model"].items()
    )
    console.print(f"before the model, timed alone (medians): {parts}")
    w = figures["write_throughput"]
    cpu = f", server CPU {w['server_cpu_share']:.2f} of one core" if "server_cpu_share" in w else ""
    console.print(
        f"{ds['controllers']} controllers x {ds['report_nodes']}-node reports, alone: "
        f"[bold]{w['reports_per_s']} reports/s[/] ({w['reports']} in {w['seconds']} s), latency "
        f"p50 {w['latency']['median_ms']} ms, p90 {w['latency']['p90_ms']} ms, "
        f"errors {w['errors']}{cpu}"
    )
    r = figures["reads"]
    ratio = figures["read_ratio_loaded_over_idle"]
    lw = figures["writes_during_loaded_reads"]
    console.print(
        f"reads (limit 100 with nodes, alternating idle/loaded phases of "
        f"{ds['phase_seconds']} s x {ds['rounds']}): idle p50 {r['idle']['median_ms']} ms "
        f"p90 {r['idle']['p90_ms']} ms (n={r['idle']['n']}); under writes p50 "
        f"{r['loaded']['median_ms']} ms p90 {r['loaded']['p90_ms']} ms (n={r['loaded']['n']}); "
        f"[bold]ratio p50 {ratio['median']}x, p90 {ratio['p90']}x[/]; meanwhile "
        f"{lw['reports_per_s']} reports/s (p50 {lw['latency']['median_ms']} ms)"
    )
    loads = "; ".join(f"{k} {v}" for k, v in figures["load_average"].items())
    console.print(f"load average (1, 5, 15 min): {loads}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clusters", type=int, default=2000, help="clusters seeded")
    p.add_argument("--nodes", type=int, default=20, help="nodes per seeded cluster")
    p.add_argument("--big-nodes", type=int, default=5000, help="nodes of the big report")
    p.add_argument("--reps", type=int, default=7, help="timed repetitions of the big reports")
    p.add_argument("--controllers", type=int, default=8, help="concurrent controllers")
    p.add_argument("--report-nodes", type=int, default=100, help="nodes per concurrent report")
    p.add_argument("--write-seconds", type=float, default=20.0, help="write-throughput phase")
    p.add_argument("--phase-seconds", type=float, default=6.0, help="each read phase")
    p.add_argument("--rounds", type=int, default=4, help="idle + loaded read phase pairs")
    p.add_argument("--profile", action="store_true", help="only profile the big reports")
    p.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    add_serve_arguments(p)
    p.add_argument("--controllers-process", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.controllers_process:
        asyncio.run(controllers_main())
        return
    with scratch_file("bench.db") as db:
        url = f"sqlite+aiosqlite:///{db}"
        t0 = time.perf_counter()
        admin = asyncio.run(seed(url, args.clusters, args.nodes))
        tokens = asyncio.run(add_controller_tokens(url, args.controllers + 1))
        secrets = Secrets(admin=admin, big=tokens[0], controllers=tokens[1:])
        seed_seconds = round(time.perf_counter() - t0, 1)
        print(f"seeded {args.clusters} clusters in {seed_seconds} s", file=sys.stderr)
        if args.profile:
            asyncio.run(profile(db, secrets, args))
            return
        env = environment()
        load = {"start": load_average()}
        with script_server(__file__, db) as srv:
            big = asyncio.run(big_reports(srv, db, secrets, args))
            load["after the big reports"] = load_average()
            print("big reports: done", file=sys.stderr)
            rw = asyncio.run(writes_and_reads(srv, secrets, args))
            load["after writes and reads"] = load_average()
            print("writes and reads: done", file=sys.stderr)
        figures: dict[str, Any] = {
            "environment": env,
            "dataset": {
                "clusters": args.clusters,
                "nodes": args.nodes,
                "seed_seconds": seed_seconds,
                "big_nodes": args.big_nodes,
                "reps": args.reps,
                "controllers": args.controllers,
                "report_nodes": args.report_nodes,
                "phase_seconds": args.phase_seconds,
                "rounds": args.rounds,
            },
            **summarize(big, rw),
            "load_average": load,
        }
    print_report(figures)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
