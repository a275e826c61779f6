"""Rate limits (SPEC §10): 429 with `Retry-After` in each API's shape, per token and, before
authentication, per client address; bounded memory whatever the callers."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.rate_limit import Buckets, Rate
from clusterql.settings import Settings
from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_url

LIST = "/runtime/api/v1/clusters"
QUERY = {"query": "{ clusters { totalCount } }"}
REPORT = "mutation R($input: ClusterReport!) { reportCluster(input: $input) { id } }"
BURST = 4
FAKE = "cql_" + "x" * 43


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = Settings(
        database_url=await migrated_database_url(tmp_path),
        rate_limit_admin=1,
        rate_limit_admin_burst=BURST,
        rate_limit_controller=1,
        rate_limit_controller_burst=2 * BURST,
        rate_limit_address=1,
        rate_limit_address_burst=BURST,
        rate_limit_keys=100,
    )
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


def client(app: Starlette, secret: str | None, address: str = "192.0.2.1") -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://clusterql.test", headers=headers)


async def graphql(c: httpx.AsyncClient) -> httpx.Response:
    return await c.post("/graphql", json=QUERY)


async def rest(c: httpx.AsyncClient) -> httpx.Response:
    return await c.post(LIST, json={})


def assert_throttled_graphql(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "RATE_LIMITED"}
    assert "try again in" in error["message"]
    return int(response.headers["Retry-After"])


def assert_throttled_rest(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert "try again in" in body["error"]
    return int(response.headers["Retry-After"])


async def test_a_burst_past_the_limit_gets_429_in_both_apis_then_waiting_is_enough(
    limited: Starlette,
) -> None:
    secret = await factories.token(resources(limited).engine, Permission.ADMIN)
    async with client(limited, secret) as admin:
        answers = [await (graphql if i % 2 else rest)(admin) for i in range(BURST)]
        assert [a.status_code for a in answers] == [200] * BURST
        wait = assert_throttled_graphql(await graphql(admin))
        assert 1 <= wait <= 2
        assert_throttled_rest(await rest(admin))  # one budget for both APIs
        await asyncio.sleep(wait)
        assert (await rest(admin)).status_code == 200
        assert_throttled_rest(await rest(admin))
        await asyncio.sleep(wait)
        assert (await graphql(admin)).status_code == 200


async def test_one_tokens_burst_does_not_throttle_another_token(limited: Starlette) -> None:
    engine = resources(limited).engine
    busy = await factories.token(engine, Permission.ADMIN)
    quiet = await factories.token(engine, Permission.ADMIN)
    async with client(limited, busy) as first, client(limited, quiet) as second:
        for _ in range(BURST):
            assert (await rest(first)).status_code == 200
        assert_throttled_rest(await rest(first))
        for _ in range(BURST):
            assert (await graphql(second)).status_code == 200


def report(name: str) -> dict[str, Any]:
    state = {
        "name": name, "provider": "aws", "regions": [], "controllerVersion": "1",
        "controllerStatus": "RUNNING", "nodes": [],
    }  # fmt: skip
    return {"query": REPORT, "variables": {"input": state}}


async def test_controllers_have_their_own_budget(limited: Starlette) -> None:
    secret = await factories.token(resources(limited).engine, Permission.CONTROLLER)
    async with client(limited, secret) as controller:
        answers = [await controller.post("/graphql", json=report("c")) for _ in range(2 * BURST)]
        assert [a.status_code for a in answers] == [200] * (2 * BURST), answers[-1].text
        assert "errors" not in answers[-1].json()
        assert_throttled_graphql(await controller.post("/graphql", json=report("c")))


async def test_an_unauthenticated_flood_is_throttled_by_address(limited: Starlette) -> None:
    secret = await factories.token(resources(limited).engine, Permission.ADMIN)
    async with (
        client(limited, FAKE) as guesser,
        client(limited, None) as anonymous,
        client(limited, secret) as same_address,
        client(limited, secret, address="198.51.100.7") as elsewhere,
    ):
        assert (await same_address.post(LIST, json={})).status_code == 200  # costs no failure
        for _ in range(BURST // 2):
            assert (await rest(guesser)).status_code == 401
            assert (await graphql(anonymous)).status_code == 401
        assert_throttled_rest(await rest(guesser))
        assert_throttled_graphql(await graphql(anonymous))
        # the address is out of attempts: even a good token waits (its lookup is not made)
        assert_throttled_rest(await rest(same_address))
        # another address is not
        assert (await rest(elsewhere)).status_code == 200
        await asyncio.sleep(1)
        assert (await rest(same_address)).status_code == 200


async def test_many_fake_tokens_from_many_addresses_leave_the_tables_bounded(
    limited: Starlette,
) -> None:
    limiter = limited.state.rate_limiter
    for i in range(400):
        fake = "cql_" + f"{i:043d}"
        async with client(limited, fake, address=f"10.0.{i // 250}.{i % 250}") as guesser:
            assert (await rest(guesser)).status_code == 401
    assert len(limiter.addresses) == 100  # the setting: the least recently seen went
    assert len(limiter.tokens) == 0  # unknown tokens never get a bucket


def _table_bytes(keys: int) -> int:
    gc.collect()
    tracemalloc.start()
    buckets = Buckets(max_keys=10_000)
    rate = Rate(per_second=1, burst=5)
    for i in range(keys):
        buckets.wait(f"fake-token-{i}", rate)
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(buckets) == min(keys, 10_000)
    del buckets
    return size


def test_memory_stays_bounded_after_100000_distinct_keys() -> None:
    at_the_bound = _table_bytes(10_000)
    far_past_it = _table_bytes(100_000)
    assert far_past_it < at_the_bound * 1.2


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    buckets = Buckets(max_keys=10, clock=lambda: now[0])
    rate = Rate(per_second=2, burst=3)
    assert [buckets.wait("k", rate) for _ in range(3)] == [0, 0, 0]
    assert buckets.wait("k", rate) == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.wait("k", rate) == 0
    assert buckets.wait("k", rate) == pytest.approx(0.5)
    now[0] = 100.0  # a long pause refills to the burst, no more
    assert [buckets.wait("k", rate) for _ in range(4)][-1] == pytest.approx(0.5)
