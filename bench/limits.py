"""How long the cost limits take to refuse what an attacker sends, up to the body-size limit:
each request sent `--rounds` times to one `clusterql serve` on a seeded SQLite file, its
client-side latency (median, worst) beside the answer and the limit that refused it.

    .venv/bin/python -m bench.limits [--quick] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from bench.measure import seed, unthrottled
from rest_shim.operations import LIST_CLUSTERS
from tests.live_server import serve_process

BODY_LIMIT = 8 * 1024 * 1024  # CLUSTERQL_MAX_GRAPHQL_BODY_BYTES's default


def _fill(head: str, item: str, tail: str, variables: dict[str, Any] | None = None) -> bytes:
    """A /graphql body of `head` + as many `item`s as fit under the body limit + `tail`."""
    empty = orjson.dumps({"query": head + tail, "variables": variables})
    count = (BODY_LIMIT - len(empty) - 64) // len(item)
    body = orjson.dumps({"query": head + item * count + tail, "variables": variables})
    assert len(body) <= BODY_LIMIT, len(body)
    return body


def _variables_list() -> bytes:
    query = "query Q($ids: [ID!]) { clusters(filter: {ids: $ids}) { totalCount } }"
    empty = len(orjson.dumps({"query": query, "variables": {"ids": []}}))
    ids = [0] * ((BODY_LIMIT - empty - 64) // 2)
    return orjson.dumps({"query": query, "variables": {"ids": ids}})


def cases() -> dict[str, tuple[str, Callable[[], bytes]]]:
    """name -> (path, what builds the body: the large ones are 8 MiB each)."""
    aliases = "{ " + " ".join(f"a{i}: clusters(limit: 100) {{ totalCount }}" for i in range(150))
    repeated = "{ clusters { clusters { " + "nodes { id } " * 480 + "} } }"
    largest = {"query": LIST_CLUSTERS, "variables": {"limit": 100, "withNodes": True}}
    filled = {  # head, the item repeated up to the limit, tail
        "aliased pages up to 8 MiB": ("{ ", "a: clusters(limit: 100) { totalCount } ", "}"),
        "4 million list items in the document, 8 MiB": (
            "{ clusters(filter: {ids: [",
            "0,",
            "]}) { totalCount } }",
        ),
        "aliases of __schema up to 8 MiB": ("{ ", "s: __schema { types { name } } ", "}"),
    }
    bodies: dict[str, Callable[[], bytes]] = {n: partial(_fill, *p) for n, p in filled.items()}
    bodies["150 aliased pages (1,502 tokens)"] = lambda: orjson.dumps({"query": aliases + " }"})
    bodies["480 repeated nodes { id } (1,928 tokens)"] = lambda: orjson.dumps({"query": repeated})
    bodies["4 million list items in variables, 8 MiB"] = _variables_list
    bodies["largest REST request over /graphql (allowed)"] = lambda: orjson.dumps(largest)
    out = {name: ("/graphql", build) for name, build in bodies.items()}
    rest = b'{"limit": 100, "return_nodes": true}'
    out["largest REST request (allowed)"] = ("/runtime/api/v1/clusters", lambda: rest)
    return out


def _outcome(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code)
    errors = body.get("errors") or []
    limits = sorted({str((e.get("extensions") or {}).get("limit")) for e in errors} - {"None"})
    if limits:
        return f"{response.status_code} {', '.join(limits)}"
    if errors:
        return f"{response.status_code} {errors[0]['extensions']['code']}"
    return str(response.status_code)


def run(args: argparse.Namespace) -> Table:
    table = Table(title=f"refusals at the body-size limit ({args.rounds} rounds)")
    for column in ("request", "body", "answer", "median ms", "worst ms"):
        table.add_column(column, justify="left" if column in ("request", "answer") else "right")
    with tempfile.TemporaryDirectory(prefix="clusterql-limits-") as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/limits.db"
        secret = asyncio.run(seed(url, args.clusters, args.nodes))
        with serve_process(unthrottled({"CLUSTERQL_DATABASE_URL": url})) as server:
            headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                for name, (path, build) in cases().items():
                    body = build()
                    times, outcome = [], ""
                    for _ in range(args.rounds):
                        started = time.perf_counter()
                        response = client.post(path, content=body)
                        times.append((time.perf_counter() - started) * 1000)
                        outcome = _outcome(response)
                    median, worst = f"{statistics.median(times):.1f}", f"{max(times):.1f}"
                    table.add_row(name, f"{len(body):,}", outcome, median, worst)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="1 round on 100 clusters (CI)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.clusters = 1, 100
    Console(width=120).print(run(args))


if __name__ == "__main__":
    main()
