"""`GET /metrics` (SPEC §10): after a known sequence of requests the counters and histogram
counts grew by exactly what was sent; who may read it; nothing counted when it is off."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.metrics import OperationNames, let_go_of_the_dead
from clusterql.settings import Settings
from clusterql.simulate import as_report
from models.tokens import Permission
from tests import factories
from tests.conftest import in_process
from tests.databases import migrated_database_url
from tests.documents import REPORT
from tests.scrape import grown, key, samples

LIST = "/runtime/api/v1/clusters"
NAMED = "query Fleet { clusters(limit: 5) { totalCount } }"
ANONYMOUS = "{ clusters(limit: 5) { totalCount } }"
TOO_MANY_ROOT_FIELDS = "{ " + " ".join(f"a{i}: clusters {{ totalCount }}" for i in range(11)) + " }"
FAKE = "cql_" + "x" * 43
ELSEWHERE = "192.0.2.9"  # the address whose failed authentications end in a 429


@pytest.fixture
async def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=await migrated_database_url(tmp_path),
        rate_limit_address=0.001,
        rate_limit_address_burst=2,
    )


async def scrape(
    app: Starlette, secret: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with in_process(app, secret) as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


def from_elsewhere(app: Starlette, secret: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ELSEWHERE, 40000))
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.AsyncClient(transport=transport, base_url="http://clusterql.test", headers=headers)


async def test_the_scrape_counts_exactly_the_requests_sent(
    app: Starlette, engine: AsyncEngine, admin_secret: str, controller_secret: str
) -> None:
    before = await scrape(app, admin_secret)
    async with in_process(app, admin_secret) as admin, in_process(app, controller_secret) as ctl:
        report = as_report(factories.cluster("metrics-1"))
        applied = await ctl.post("/graphql", json={"query": REPORT, "variables": {"input": report}})
        cluster_id = applied.json()["data"]["reportCluster"]["id"]
        bad = as_report(factories.cluster("metrics-2", node_states=[factories.node("n")]))
        bad["nodes"][0]["internalIp"] = "not an address"
        refused = await ctl.post("/graphql", json={"query": REPORT, "variables": {"input": bad}})
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert (await admin.post(LIST, json={})).status_code == 200
        assert (await admin.get(f"/runtime/api/v1/cluster/{cluster_id}")).status_code == 200
        assert (await admin.post(LIST, json={"limit": 0})).status_code == 400
        assert (await admin.post("/graphql", json={"query": NAMED})).status_code == 200
        assert (await admin.post("/graphql", json={"query": ANONYMOUS})).status_code == 200
        costly = await admin.post("/graphql", json={"query": TOO_MANY_ROOT_FIELDS})
        assert costly.json()["errors"][0]["extensions"]["limit"] == "rootFields"
    async with from_elsewhere(app, FAKE) as guesser:
        statuses = [(await guesser.post(LIST, json={})).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
    changed = grown(before, await scrape(app, admin_secret))

    def requests(route: str, method: str, status: int) -> float:
        return changed.pop(
            key("clusterql_http_requests_total", route=route, method=method, status=str(status))
        )

    assert requests("/graphql", "POST", 200) == 5
    assert requests(LIST, "POST", 200) == 1
    assert requests(LIST, "POST", 400) == 1
    assert requests(LIST, "POST", 401) == 2
    assert requests(LIST, "POST", 429) == 1
    assert requests("/runtime/api/v1/cluster/{id}", "GET", 200) == 1
    assert requests("/metrics", "GET", 200) == 1  # the first scrape

    def latencies(name: str, **labels: str) -> float:
        changed.pop(key(f"{name}_sum", **labels))
        buckets = [k for k in changed if k[0] == f"{name}_bucket" and set(labels.items()) <= k[1]]
        assert (
            changed[key(f"{name}_bucket", **labels, le="+Inf")]
            == changed[key(f"{name}_count", **labels)]
        )
        for bucket in buckets:
            changed.pop(bucket)
        return changed.pop(key(f"{name}_count", **labels))

    route = "clusterql_http_request_duration_seconds"
    assert latencies(route, route="/graphql", method="POST") == 5
    assert latencies(route, route=LIST, method="POST") == 5
    assert latencies(route, route="/runtime/api/v1/cluster/{id}", method="GET") == 1
    assert latencies(route, route="/metrics", method="GET") == 1
    operation = "clusterql_graphql_operation_duration_seconds"
    assert latencies(operation, operation="R", type="mutation") == 2
    assert latencies(operation, operation="Fleet", type="query") == 1
    assert latencies(operation, operation="anonymous", type="query") == 2  # and the costly one
    assert latencies(operation, operation="RestListClusters", type="query") == 1
    assert latencies(operation, operation="RestGetCluster", type="query") == 1
    assert latencies("clusterql_report_apply_seconds") == 1

    assert changed.pop(key("clusterql_reports_total", outcome="applied")) == 1
    assert changed.pop(key("clusterql_reports_total", outcome="refused")) == 1
    # the refused report and the costly operation; the REST 401s and 429 are not /graphql's
    assert changed.pop(key("clusterql_graphql_errors_total", code="BAD_USER_INPUT")) == 2
    assert changed.pop(key("clusterql_refusals_total", reason="cost_rootFields")) == 1
    assert changed.pop(key("clusterql_refusals_total", reason="rate_limit_address")) == 1

    checkouts = latencies("clusterql_database_pool_wait_seconds")
    if engine.dialect.name == "sqlite":  # two reports and the token's last use
        assert latencies("clusterql_sqlite_write_lock_wait_seconds") >= 2
        # the writes' checkouts: the snapshots take the connections kept for them
        assert checkouts >= 2
    else:
        assert checkouts >= 8  # one checkout a request at least
    assert changed == {}, "nothing else was counted"


async def test_graphql_errors_count_http_level_refusals_by_their_code(
    app: Starlette, admin_secret: str
) -> None:
    before = await scrape(app, admin_secret)
    async with in_process(app) as anonymous:
        assert (await anonymous.post("/graphql", json={"query": NAMED})).status_code == 401
    async with in_process(app, admin_secret) as admin:
        assert (
            await admin.post("/graphql", content=b"{", headers={"content-type": "application/json"})
        ).status_code == 400
    changed = grown(before, await scrape(app, admin_secret))
    assert changed[key("clusterql_graphql_errors_total", code="UNAUTHENTICATED")] == 1
    assert changed[key("clusterql_graphql_errors_total", code="BAD_USER_INPUT")] == 1


async def test_the_connections_in_use_go_back_to_what_they_were(
    app: Starlette, admin_secret: str
) -> None:
    in_use = key("clusterql_database_connections_in_use")
    before = await scrape(app, admin_secret)
    async with in_process(app, admin_secret) as admin:
        for _ in range(3):
            assert (await admin.post(LIST, json={})).status_code == 200
    after = await scrape(app, admin_secret)
    assert after[in_use] == before[in_use] >= 1  # the scrape's own token lookup holds one


def test_operation_names_are_bounded() -> None:
    names = OperationNames(kept=2)
    assert [names.label(n) for n in ("A", None, "B", "C", "A", "D")] == [
        "A",
        "anonymous",
        "B",
        "other",
        "A",
        "other",
    ]


async def test_metrics_need_an_admin_token_by_default(
    client: httpx.AsyncClient, app: Starlette, controller_secret: str
) -> None:
    refused = await client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    async with in_process(app, controller_secret) as controller:
        forbidden = await controller.get("/metrics")
    assert forbidden.status_code == 403
    assert "Admin" in forbidden.json()["error"]


@pytest.fixture
async def public(tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = Settings(database_url=await migrated_database_url(tmp_path), metrics="public")
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


async def test_public_metrics_need_no_token(public: Starlette) -> None:
    async with in_process(public) as anyone:
        response = await anyone.get("/metrics")
    assert response.status_code == 200
    assert "clusterql_http_requests_total" in response.text


@pytest.fixture
async def off(tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = Settings(database_url=await migrated_database_url(tmp_path), metrics="off")
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


async def test_with_metrics_off_there_is_no_endpoint_and_nothing_is_counted(off: Starlette) -> None:
    secret = await factories.token(resources(off).engine, Permission.ADMIN)
    before = samples(generate_latest(REGISTRY).decode())
    async with in_process(off, secret) as admin:
        assert (await admin.post(LIST, json={})).status_code == 200
        assert (await admin.get("/metrics")).status_code == 404
    assert grown(before, samples(generate_latest(REGISTRY).decode())) == {}


def test_the_live_gauges_of_dead_workers_are_let_go(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone, alive = int(dead.stdout), os.getpid()
    for pid in (gone, alive):
        for name in (f"gauge_livesum_{pid}.db", f"counter_{pid}.db"):
            (tmp_path / name).write_bytes(b"")
    let_go_of_the_dead(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{gone}.db", f"counter_{alive}.db", f"gauge_livesum_{alive}.db"]
    )
