"""Benchmark of the read path: REST vs GraphQL vs a hand-written reference, run on demand.

One run seeds a temporary SQLite database (10,000 clusters x 20 nodes by default), serves the real
app plus a reference route from one uvicorn process on 127.0.0.1, and times `limit=100` pages with
and without nodes through:

- rest:      POST /runtime/api/v1/clusters (the REST shim, which runs GraphQL in-process);
- graphql:   POST /graphql with the very operation the REST shim runs (`LIST_CLUSTERS`);
- reference: the same SQL (`listing.page`, `listing.count_matching`, `nodes_of` in one read
             transaction) and the same JSON as the REST answer, built by hand, encoded with orjson.

The reference route sits under the REST prefix, so the same middleware (request id, token lookup)
runs for all three. Requests are interleaved round-robin over pages at different depths, so that
machine noise hits every variant alike. The same is repeated in-process (httpx.ASGITransport),
where SQL statements are also counted per request.

    .venv/bin/python bench/read_paths.py [--out figures.json] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support import (
    add_serve_arguments,
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
from clusterql.resources import resources
from clusterql.settings import Settings
from graph.scalars import format_timestamp, parse_cluster_id
from models import clusters as clusters_db
from models import listing
from models.engine import read_transaction
from models.listing import ClusterFilter, Order, Position
from models.records import ClusterRecord, NodeRecord
from models.tokens import Permission
from rest_shim.body import read_json_object
from rest_shim.list_request import parse_list_request
from rest_shim.operations import LIST_CLUSTERS, rest_page
from rest_shim.problems import RestError, error_response
from rest_shim.routes import PREFIX

REST_PATH = f"{PREFIX}/clusters"
REFERENCE_PATH = f"{PREFIX}/bench-reference/clusters"
LIMIT = 100
KINDS = ("rest", "graphql", "reference")
VARIANTS = tuple((kind, nodes) for nodes in (True, False) for kind in KINDS)


# --- the reference route ---------------------------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def reference_node(n: NodeRecord) -> dict[str, Any]:
    return {
        "id": n.id,
        "monitored_at": format_timestamp(n.monitored_at),
        "name": n.name,
        "sensor_installed": n.sensor_installed,
        "sensor_last_updated": _ts(n.sensor_last_updated),
        "sensor_version": n.sensor_version,
        "region": n.region,
        "architecture": n.architecture,
        "hostname": n.hostname,
        "internal_dns": n.internal_dns,
        "internal_ip": n.internal_ip,
        "status": n.status,
    }


def reference_cluster(c: ClusterRecord, nodes: list[NodeRecord] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "monitored_at": format_timestamp(c.monitored_at),
        "id": str(c.id),
        "name": c.name,
        "controller_version": c.controller_version,
        "controller_status": c.controller_status,
        "controller_last_updated": format_timestamp(c.controller_last_updated),
        "provider": c.provider,
        "regions": c.regions,
        "nodes_count": c.nodes_count,
        "running_nodes_count": c.running_nodes_count,
        "failed_nodes_count": c.failed_nodes_count,
        "failed_to_install_nodes_count": c.failed_to_install_nodes_count,
        "disabled_nodes_count": c.disabled_nodes_count,
    }
    if nodes is not None:
        out["nodes"] = [reference_node(n) for n in nodes]
    return out


async def reference_page(
    engine: AsyncEngine, after_id: int | None, limit: int, with_nodes: bool
) -> dict[str, Any]:
    """The REST page, from the SQL the GraphQL path runs, in the order it runs it."""
    async with read_transaction(engine) as conn:
        if after_id is not None:
            assert await clusters_db.id_assigned(conn, after_id)
        after = None if after_id is None else Position(after_id, after_id)
        records, more = await listing.page(conn, ClusterFilter(), Order(), after, limit)
        total = await listing.count_matching(conn, ClusterFilter())
        by_cluster = (
            await clusters_db.nodes_of(conn, {r.id for r in records})
            if with_nodes and records
            else {}
        )
    pagination: dict[str, Any] = {"limit": limit}
    if more and records:
        pagination["next_key"] = str(records[-1].id)
    return {
        "total_count": total,
        "pagination": pagination,
        "clusters": [
            reference_cluster(r, by_cluster.get(r.id, []) if with_nodes else None) for r in records
        ],
    }


async def reference_endpoint(request: Request) -> Response:
    if not request.state.principal.may(Permission.ADMIN):
        return error_response(403, "this token lacks the Admin permission")
    try:
        req = parse_list_request(await read_json_object(request))
    except RestError as exc:
        return error_response(exc.status, exc.message, exc.headers)
    page = await reference_page(
        resources(request.app).engine,
        parse_cluster_id(req.next_key) if req.next_key else None,
        req.limit,
        req.return_nodes,
    )
    return Response(orjson.dumps(page), media_type="application/json")


def build_app(db: Path) -> Starlette:
    """The real app, plus the reference route behind the same middleware."""
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{db}"))
    app.router.routes.append(Route(REFERENCE_PATH, reference_endpoint, methods=["POST"]))
    return app


# --- requests --------------------------------------------------------------------------------


def request_of(kind: str, nodes: bool, next_key: str) -> tuple[str, dict[str, Any]]:
    if kind == "graphql":
        variables = {"limit": LIMIT, "nextKey": next_key, "withNodes": nodes}
        return "/graphql", {"query": LIST_CLUSTERS, "variables": variables}
    path = REST_PATH if kind == "rest" else REFERENCE_PATH
    return path, {"limit": LIMIT, "return_nodes": nodes, "next_key": next_key}


def as_rest(kind: str, body: bytes) -> Any:
    """A response body as REST JSON (GraphQL's is reshaped the way the REST shim does it)."""
    payload = orjson.loads(body)
    if kind == "graphql":
        assert not payload.get("errors"), payload["errors"]
        return rest_page(payload["data"]["clusters"])
    return payload


def depths(clusters: int) -> list[str]:
    """next_key values spread over the whole walk: first page, middle pages, last page."""
    last = clusters - LIMIT
    keys = [0, *(min(clusters * k // 10, last) for k in range(1, 10)), last]
    return ["" if k == 0 else str(k) for k in sorted(set(keys))]


Send = Callable[[str, dict[str, Any]], Awaitable[bytes]]


def poster(client: httpx.AsyncClient) -> Send:
    """Sends a request through `client`: a POST of a JSON body, whose answer must be a success."""

    async def send(path: str, body: dict[str, Any]) -> bytes:
        response = await client.post(path, json=body)
        response.raise_for_status()
        return response.content

    return send


def check_same(responses: dict[tuple[str, bool], bytes], next_key: str) -> None:
    """REST and reference must be byte-identical; GraphQL, reshaped, equal."""
    for nodes in (True, False):
        rest = responses["rest", nodes]
        ref = responses["reference", nodes]
        assert rest == ref, f"REST and reference differ (next_key={next_key!r}, nodes={nodes})"
        gql = as_rest("graphql", responses["graphql", nodes])
        assert gql == orjson.loads(ref), f"GraphQL differs (next_key={next_key!r})"
        assert len(orjson.loads(ref)["clusters"]) == LIMIT


@dataclass
class Timings:
    samples: dict[tuple[str, bool], list[float]] = field(
        default_factory=lambda: {v: [] for v in VARIANTS}
    )
    sizes: dict[tuple[str, bool], int] = field(default_factory=dict)
    rounds: int = 0
    seconds: float = 0.0


async def time_rounds(send: Send, keys: list[str], samples: int, budget: float) -> Timings:
    """Round-robin: each round sends every variant once, for one page depth, in rotating order."""
    out = Timings()
    started = time.perf_counter()
    for r in range(samples):
        next_key = keys[r % len(keys)]
        rotation = r % len(VARIANTS)
        for kind, nodes in VARIANTS[rotation:] + VARIANTS[:rotation]:
            path, body = request_of(kind, nodes, next_key)
            t0 = time.perf_counter()
            raw = await send(path, body)
            out.samples[kind, nodes].append((time.perf_counter() - t0) * 1000)
            out.sizes[kind, nodes] = len(raw)
        out.rounds = r + 1
        if time.perf_counter() - started > budget:
            break
    out.seconds = time.perf_counter() - started
    return out


async def run_phase(send: Send, keys: list[str], args: argparse.Namespace) -> Timings:
    for next_key in keys:  # honesty first: every depth, every variant
        responses = {}
        for kind, nodes in VARIANTS:
            responses[kind, nodes] = await send(*request_of(kind, nodes, next_key))
        check_same(responses, next_key)
    await time_rounds(send, keys, args.warmup, math.inf)
    return await time_rounds(send, keys, args.samples, args.budget)


# --- in-process: ASGI transport and statement counts -----------------------------------------


def _label(sql: str) -> str:
    s = " ".join(sql.split())
    if s.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
        return s
    table = s.split(" FROM ", 1)[1].split()[0] if " FROM " in s else "?"
    if s.startswith("SELECT count("):
        return f"count {table}"
    if table == "clusters" and "LIMIT" in s:
        return "page clusters"
    if table == "clusters":
        return "id check clusters"
    return f"{s.split()[0].lower()} {s.split()[1] if s.startswith('UPDATE') else table}"


async def count_statements(
    client: httpx.AsyncClient, engine: AsyncEngine, keys: list[str]
) -> dict[str, Any]:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(args[2])

    # A first request records the token's use (a write at most once a minute): not counted.
    path, body = request_of("reference", False, keys[0])
    (await client.post(path, json=body)).raise_for_status()
    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    out: dict[str, Any] = {}
    try:
        for kind, nodes in VARIANTS:
            per_key = {}
            for next_key in (keys[0], keys[len(keys) // 2]):
                seen.clear()
                path, body = request_of(kind, nodes, next_key)
                (await client.post(path, json=body)).raise_for_status()
                per_key[next_key or "first"] = list(seen)
            out[f"{kind}{'+nodes' if nodes else ''}"] = per_key
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listener)
    # The reference is only honest if it runs exactly the statements the GraphQL path runs.
    for suffix in ("+nodes", ""):
        for kind in ("rest", "graphql"):
            assert out[kind + suffix] == out["reference" + suffix], (kind + suffix, out)
    return {
        name: {
            key: {"count": len(sql), "statements": [_label(s) for s in sql]}
            for key, sql in per_key.items()
        }
        for name, per_key in out.items()
    }


async def in_process(db: Path, secret: str, args: argparse.Namespace) -> dict[str, Any]:
    app = build_app(db)
    headers = {"Authorization": f"Bearer {secret}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            keys = depths(args.clusters)
            statements = await count_statements(client, resources(app).engine, keys)
            timings = None if args.no_asgi else await run_phase(poster(client), keys, args)
    return {"statements": statements, "timings": timings}


# --- over HTTP: uvicorn in a subprocess ------------------------------------------------------


def serve(db: Path, port: int) -> None:
    run_uvicorn(build_app(db), port)


def over_http(db: Path, secret: str, args: argparse.Namespace) -> Timings:
    with script_server(__file__, db) as server:
        return asyncio.run(_over_http(server.url, secret, args))


async def _over_http(base: str, secret: str, args: argparse.Namespace) -> Timings:
    headers = {"Authorization": f"Bearer {secret}"}
    # One keep-alive connection, requests one at a time: latency, not throughput.
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        return await run_phase(poster(client), depths(args.clusters), args)


# --- report ----------------------------------------------------------------------------------


def summarize(t: Timings) -> dict[str, Any]:
    variants = {}
    for kind, nodes in VARIANTS:
        xs = t.samples[kind, nodes]
        variants[f"{kind}{'+nodes' if nodes else ''}"] = {
            "n": len(xs),
            "median_ms": round(statistics.median(xs), 2),
            "p90_ms": round(percentile(xs, 0.9), 2),
            "response_bytes": t.sizes[kind, nodes],
        }
    ratios = {}
    for suffix in ("+nodes", ""):
        ref = variants["reference" + suffix]
        for kind in ("rest", "graphql"):
            v = variants[kind + suffix]
            ratios[f"{kind}{suffix}/reference{suffix}"] = {
                "median": round(v["median_ms"] / ref["median_ms"], 2),
                "p90": round(v["p90_ms"] / ref["p90_ms"], 2),
            }
    return {
        "rounds": t.rounds,
        "seconds": round(t.seconds, 1),
        "variants": variants,
        "ratios": ratios,
    }


def print_report(figures: dict[str, Any]) -> None:
    from rich.table import Table

    console = wide_console(120)
    env = figures["environment"]
    console.print(
        f"[bold]clusterql read paths[/] {env['date']}, {env['cpus']} CPUs ({env['cpu']}), "
        f"Python {env['python']}; {figures['dataset']['clusters']:,} clusters x "
        f"{figures['dataset']['nodes_per_cluster']} nodes, limit={LIMIT}, "
        f"seeded in {figures['dataset']['seed_seconds']} s"
    )
    table = Table(title="median / p90 in ms; ratio = median / reference median (same run)")
    table.add_column("variant")
    phases = [p for p in ("http", "asgi") if figures.get(p)]
    for phase in phases:
        label = "uvicorn+HTTP" if phase == "http" else "in-process ASGI"
        table.add_column(f"{label}\nmedian", justify="right")
        table.add_column("p90", justify="right")
        table.add_column("ratio", justify="right")
    table.add_column("SQL stmts\nfirst/deep", justify="right")
    table.add_column("KB", justify="right")
    for kind, nodes in VARIANTS:
        name = f"{kind}{'+nodes' if nodes else ''}"
        row = [name]
        for phase in phases:
            v = figures[phase]["variants"][name]
            ref = figures[phase]["variants"][f"reference{'+nodes' if nodes else ''}"]
            ratio = v["median_ms"] / ref["median_ms"]
            row += [f"{v['median_ms']:.1f}", f"{v['p90_ms']:.1f}", f"{ratio:.2f}x"]
        counts = figures["statements"][name]
        row.append("/".join(str(c["count"]) for c in counts.values()))
        size = figures[phases[0]]["variants"][name]["response_bytes"] if phases else 0
        row.append(f"{size / 1024:.0f}")
        table.add_row(*row)
    console.print(table)
    for phase in phases:
        f = figures[phase]
        console.print(f"{phase}: {f['rounds']} rounds in {f['seconds']} s")
    first = figures["statements"]["graphql+nodes"]
    for key, c in first.items():
        console.print(f"statements, graphql+nodes, next_key={key}: {', '.join(c['statements'])}")
    console.print(f"load average at the end: {figures['load_average_end']}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clusters", type=int, default=10_000)
    p.add_argument("--nodes", type=int, default=20, help="nodes per cluster")
    p.add_argument("--samples", type=int, default=200, help="requests per variant and phase")
    p.add_argument("--warmup", type=int, default=12, help="untimed rounds per phase")
    p.add_argument("--budget", type=float, default=90.0, help="seconds per phase at most")
    p.add_argument("--no-asgi", action="store_true", help="skip the in-process timings")
    p.add_argument("--no-http", action="store_true", help="skip the uvicorn timings")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    add_serve_arguments(p)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    with scratch_file("bench.db") as db:
        t0 = time.perf_counter()
        secret = asyncio.run(seed(f"sqlite+aiosqlite:///{db}", args.clusters, args.nodes))
        figures: dict[str, Any] = {
            "environment": environment(),
            "dataset": {
                "clusters": args.clusters,
                "nodes_per_cluster": args.nodes,
                "limit": LIMIT,
                "seed_seconds": round(time.perf_counter() - t0, 1),
                "next_keys": depths(args.clusters),
            },
        }
        print(
            f"seeded {args.clusters} clusters in {figures['dataset']['seed_seconds']} s",
            file=sys.stderr,
        )
        if not args.no_http:
            figures["http"] = summarize(over_http(db, secret, args))
        asgi = asyncio.run(in_process(db, secret, args))
        figures["statements"] = asgi["statements"]
        if asgi["timings"] is not None:
            figures["asgi"] = summarize(asgi["timings"])
        figures["load_average_end"] = load_average()
    print_report(figures)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
