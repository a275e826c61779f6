"""Overload (SPEC §10): past the bound on requests in flight, 503 with `Retry-After` at once, in
each API's shape; nothing else fails, and every request let in is answered in full."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from models.engine import create_engine
from models.tokens import Permission
from rest_shim.operations import LIST_CLUSTERS
from tests import factories
from tests.databases import migrated_database_url
from tests.live_server import live_server
from tests.scrape import key, samples

LIST = "/runtime/api/v1/clusters"
IN_FLIGHT = 2
BURST = 24


async def _seeded(tmp_path: Path) -> tuple[str, str]:
    url = await migrated_database_url(tmp_path)
    engine = create_engine(url)
    try:
        await factories.insert(engine, [factories.cluster(node_count=20) for _ in range(100)])
        secret = await factories.token(engine, Permission.ADMIN)
    finally:
        await engine.dispose()
    return url, secret


async def test_a_burst_past_the_in_flight_bound_gets_503s_and_nothing_else_fails(
    tmp_path: Path,
) -> None:
    url, secret = await _seeded(tmp_path)
    env = {"CLUSTERQL_DATABASE_URL": url, "CLUSTERQL_MAX_IN_FLIGHT": str(IN_FLIGHT)}
    with live_server(env) as base_url:
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=60
        ) as c:

            async def one(i: int) -> httpx.Response:
                if i % 2:
                    return await c.post(LIST, json={"limit": 100, "return_nodes": True})
                variables = {"limit": 100, "withNodes": True}
                return await c.post(
                    "/graphql", json={"query": LIST_CLUSTERS, "variables": variables}
                )

            answers = await asyncio.gather(*(one(i) for i in range(BURST)))
            statuses = sorted(a.status_code for a in answers)
            assert set(statuses) == {200, 503}, statuses
            for i, answer in enumerate(answers):
                if answer.status_code == 503:
                    assert answer.headers["Retry-After"] == "1"
                    body = answer.json()
                    if i % 2:
                        assert list(body) == ["error"]
                        assert "overloaded" in body["error"]
                    else:
                        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
                elif i % 2:
                    assert len(answer.json()["clusters"]) == 100
                    assert all(len(c["nodes"]) == 20 for c in answer.json()["clusters"])
                else:
                    assert len(answer.json()["data"]["clusters"]["clusters"]) == 100
            # once the burst is over, the process serves again
            assert (await c.post(LIST, json={"limit": 1})).status_code == 200
            # and its metrics (a process of its own: they are this test's) count the 503s
            counted = samples((await c.get("/metrics")).text)
            refused = counted[key("clusterql_refusals_total", reason="in_flight")]
            assert refused == statuses.count(503)
            in_graphql = key(
                "clusterql_http_requests_total", route="/graphql", method="POST", status="503"
            )
            in_rest = key("clusterql_http_requests_total", route=LIST, method="POST", status="503")
            assert counted.get(in_graphql, 0) + counted.get(in_rest, 0) == refused
