"""PostgreSQL goes away and comes back under load: 503s meanwhile, then everything works again.

A real `clusterql serve` process on a PostgreSQL server this module owns. Readers (REST and
GraphQL) and writers (reports registering new clusters) run without pause while the server is
stopped and started again. During the outage every answer is 503 with `Retry-After` (REST:
`{"error": ...}`; GraphQL: an error coded SERVICE_UNAVAILABLE) and comes within the client's
timeout; never a 500, never driver text. Once the server is back every request succeeds with
no restart of clusterql, and every report that was acknowledged, before, during or after the
outage, is stored.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests import factories
from tests.databases import migrated_database_on
from tests.documents import REPORT
from tests.live_server import serve_process, token_client
from tests.postgres_server import PostgresServer

CLIENT_TIMEOUT_S = 5.0  # "a few seconds": nothing may take longer, outage or not
OUTAGE_S = 2.5
LIST = "/runtime/api/v1/clusters"
CLUSTERS = "{ clusters(limit: 20) { totalCount clusters { name nodesCount nodes { id } } } }"
LEAKS = ("Traceback", "asyncpg", "sqlalchemy", "Errno", "SELECT", "127.0.0.1", "postgres")


@dataclass
class Answer:
    kind: str  # "rest", "graphql" or "report"
    sent: float
    received: float
    status: int
    headers: httpx.Headers
    body: Any


@dataclass
class Timeline:
    answers: list[Answer] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    stopping: float = 0.0  # stop was called: all was well until here
    down: float = 0.0  # the server was down from here (stop returned)...
    up: float = 0.0  # ...until here (start was called)
    back: float = 0.0  # start returned: the server accepts connections again


def _report(name: str) -> dict[str, Any]:
    nodes = [
        {
            "name": f"n{i}",
            "hostname": f"{name}-n{i}",
            "status": "MONITORED",
            "sensorInstalled": False,
        }
        for i in range(5)
    ]
    return {
        "name": name,
        "provider": "kubernetes",
        "regions": ["dc-1"],
        "controllerVersion": "1",
        "controllerStatus": "RUNNING",
        "nodes": nodes,
    }


async def _call(client: httpx.AsyncClient, kind: str, name: str = "") -> Answer:
    sent = time.monotonic()
    if kind == "rest":
        response = await client.post(LIST, json={"limit": 20, "return_nodes": True})
    elif kind == "graphql":
        response = await client.post("/graphql", json={"query": CLUSTERS})
    else:
        body = {"query": REPORT, "variables": {"input": _report(name)}}
        response = await client.post("/graphql", json=body)
    return Answer(
        kind, sent, time.monotonic(), response.status_code, response.headers, response.json()
    )


def _check_answer(answer: Answer) -> None:
    """Any single answer: a success, or a proper 503; never a 500, never driver details."""
    assert answer.received - answer.sent < CLIENT_TIMEOUT_S
    assert answer.status in (200, 503), answer
    assert not any(leak in str(answer.body) for leak in LEAKS), answer.body
    if answer.status == 200:
        assert not answer.body.get("errors"), answer.body
        return
    assert answer.headers["retry-after"].isdigit()
    if answer.kind == "rest":
        assert set(answer.body) == {"error"}
    else:
        codes = {e["extensions"]["code"] for e in answer.body["errors"]}
        assert codes == {"SERVICE_UNAVAILABLE"}
        assert answer.body.get("data") is None


async def _load(
    base_url: str, admin: str, controller: str, timeline: Timeline, stop: asyncio.Event
) -> None:
    async def reader(kind: str) -> None:
        async with token_client(base_url, admin, timeout=CLIENT_TIMEOUT_S) as client:
            while not stop.is_set():
                timeline.answers.append(await _call(client, kind))
                await asyncio.sleep(0.02)

    async def writer(w: int) -> None:
        async with token_client(base_url, controller, timeout=CLIENT_TIMEOUT_S) as client:
            j = 0
            while not stop.is_set():
                name = f"outage-{w}-{j}"
                answer = await _call(client, "report", name)
                timeline.answers.append(answer)
                if answer.status == 200:
                    timeline.acked.add(name)
                j += 1
                await asyncio.sleep(0.02)

    await asyncio.gather(
        reader("rest"), reader("rest"), reader("graphql"), writer(0), writer(1), writer(2)
    )


async def _stored_names(base_url: str, admin: str) -> set[str]:
    names: set[str] = set()
    body: dict[str, Any] = {"limit": 100}
    async with token_client(base_url, admin) as client:
        while True:
            page = (await client.post(LIST, json=body)).json()
            names |= {c["name"] for c in page["clusters"]}
            if "next_key" not in page["pagination"]:
                return names
            body["next_key"] = page["pagination"]["next_key"]


async def test_a_postgresql_restart_under_load_is_503_then_full_recovery(
    postgres: PostgresServer,
) -> None:
    database_url = await migrated_database_on(postgres.url)
    admin, controller = await factories.admin_and_controller(
        database_url, [factories.cluster(f"before-{i}") for i in range(5)]
    )
    env = {
        "CLUSTERQL_DATABASE_URL": database_url,
        "CLUSTERQL_DATABASE_CONNECT_TIMEOUT": "2",
        "CLUSTERQL_DATABASE_POOL_TIMEOUT": "2",
        # every acknowledged report is a new name, however many a fast run gets in
        "CLUSTERQL_CONTROLLER_MAX_CLUSTERS": "100000",
        # three clients a token, each as fast as it is answered (503s come at once): a fast
        # run passes the tokens' rate limits, which are not what this test is about
        "CLUSTERQL_RATE_LIMIT_ADMIN": "0",
        "CLUSTERQL_RATE_LIMIT_CONTROLLER": "0",
    }
    timeline = Timeline()
    stop = asyncio.Event()
    with serve_process(env) as server:
        load = asyncio.create_task(_load(server.url, admin, controller, timeline, stop))
        await asyncio.sleep(1.5)  # a healthy start
        timeline.stopping = time.monotonic()
        await asyncio.to_thread(postgres.stop)
        timeline.down = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        timeline.up = time.monotonic()
        await asyncio.to_thread(postgres.start)
        timeline.back = time.monotonic()
        await asyncio.sleep(2.0)  # and a healthy end
        stop.set()
        await asyncio.wait_for(load, timeout=3 * CLIENT_TIMEOUT_S)
        stored = await _stored_names(server.url, admin)

    for answer in timeline.answers:
        _check_answer(answer)
    before = [a for a in timeline.answers if a.received < timeline.stopping]
    during = [a for a in timeline.answers if timeline.down <= a.sent and a.received <= timeline.up]
    after = [a for a in timeline.answers if a.sent >= timeline.back]
    assert {a.kind for a in during} == {"rest", "graphql", "report"}, "no load in the outage"
    assert all(a.status == 503 for a in during)
    assert before
    assert all(a.status == 200 for a in before)
    assert {a.kind for a in after} == {"rest", "graphql", "report"}, "no load after the outage"
    assert all(a.status == 200 for a in after), [a for a in after if a.status != 200][:3]
    assert timeline.acked, "no report acknowledged"
    missing = timeline.acked - stored
    assert not missing, f"{len(missing)} acknowledged reports were lost"
