"""Staleness (SPEC §11): a cluster whose last accepted report is older than
CLUSTERQL_STALE_AFTER is stale, in `Cluster.stale`, the GraphQL filter and REST `filters`."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.settings import Settings
from clusterql.simulate import as_report
from models.engine import write_transaction
from models.seeding import insert_clusters
from models.tokens import Permission
from tests import documents, factories, walks
from tests.conftest import in_process
from tests.databases import migrated_database_url

URL = "/runtime/api/v1/clusters"
STALE_AFTER = timedelta(seconds=60)
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
QUERY = """query Q($filter: ClusterFilter) {
  clusters(filter: $filter, limit: 100) { totalCount clusters { name stale } }
}"""


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def stale_app(tmp_path: Path, clock: Clock) -> AsyncIterator[Starlette]:
    settings = Settings(database_url=await migrated_database_url(tmp_path), stale_after=STALE_AFTER)
    application = create_app(settings, clock=clock)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def admin_of(stale_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    secret = await factories.token(resources(stale_app).engine, Permission.ADMIN)
    async with in_process(stale_app, secret) as c:
        yield c


async def _report(admin: httpx.AsyncClient, name: str) -> None:
    variables = {"input": as_report(factories.cluster(name, node_count=1))}
    response = await admin.post(
        "/graphql", json={"query": documents.REPORT, "variables": variables}
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text


async def _graphql(admin: httpx.AsyncClient, stale: bool | None) -> dict[str, Any]:
    variables = {"filter": None if stale is None else {"stale": stale}}
    response = await admin.post("/graphql", json={"query": QUERY, "variables": variables})
    assert "errors" not in response.json(), response.text
    page: dict[str, Any] = response.json()["data"]["clusters"]
    return page


async def _rest_names(admin: httpx.AsyncClient, stale: bool) -> list[str]:
    response = await admin.post(URL, json={"filters": {"stale": stale}, "limit": 100})
    assert response.status_code == 200, response.text
    clusters = response.json()["clusters"]
    assert all(len(c) == 13 for c in clusters)  # `stale` is no REST key: the 13 stay 13
    return [c["name"] for c in clusters]


async def test_a_cluster_goes_stale_just_after_the_threshold_and_fresh_on_its_next_report(
    admin_of: httpx.AsyncClient, clock: Clock
) -> None:
    await _report(admin_of, "quiet")
    clock.now = T0 + timedelta(seconds=30)
    await _report(admin_of, "chatty")
    for now, stale in [
        (T0 + STALE_AFTER - timedelta(microseconds=1), set()),
        (T0 + STALE_AFTER, set()),  # exactly as old as allowed: not older
        (T0 + STALE_AFTER + timedelta(microseconds=1), {"quiet"}),
        (T0 + timedelta(seconds=30) + STALE_AFTER + timedelta(microseconds=1), {"quiet", "chatty"}),
    ]:
        clock.now = now
        everything = await _graphql(admin_of, None)
        assert {c["name"] for c in everything["clusters"] if c["stale"]} == stale, now
        only_stale = await _graphql(admin_of, True)
        assert {c["name"] for c in only_stale["clusters"]} == stale
        assert only_stale["totalCount"] == len(stale)
        fresh = await _graphql(admin_of, False)
        assert {c["name"] for c in fresh["clusters"]} == {"quiet", "chatty"} - stale
        assert set(await _rest_names(admin_of, True)) == stale
        assert set(await _rest_names(admin_of, False)) == {"quiet", "chatty"} - stale
    await _report(admin_of, "quiet")  # it speaks again
    assert {c["name"] for c in (await _graphql(admin_of, True))["clusters"]} == {"chatty"}


async def test_a_stale_filter_that_is_not_a_boolean_is_400_naming_it(
    admin_of: httpx.AsyncClient,
) -> None:
    response = await admin_of.post(URL, json={"filters": {"stale": "yes"}})
    assert response.status_code == 400
    assert "filters.stale" in response.json()["error"]
    assert "true or false" in response.json()["error"]


def test_stale_after_takes_seconds_or_iso_8601_and_refuses_the_rest() -> None:
    assert Settings().stale_after == timedelta(minutes=15)
    assert Settings(stale_after="900").stale_after == timedelta(minutes=15)
    assert Settings(stale_after="PT1H30M").stale_after == timedelta(minutes=90)
    for bad in ("0", "-5", "soon", "PT0S"):
        with pytest.raises(ValueError, match="stale_after"):
            Settings(stale_after=bad)


async def _old_fleet(engine: AsyncEngine, rng: random.Random) -> None:
    """60 clusters, about half of them last heard from two hours ago."""
    states = [
        factories.cluster(
            f"{rng.choice(['prod', 'dev'])}-{i:02d}",
            node_count=rng.choice([0, 1, 3]),
            provider=rng.choice(["aws", "gcp"]),
        )
        for i in range(60)
    ]
    now = datetime.now(UTC)
    for i, state in enumerate(states):
        async with write_transaction(engine) as conn:
            when = now - timedelta(hours=2) if i % 2 else now - timedelta(seconds=i)
            await insert_clusters(conn, [state], when + timedelta(microseconds=i))


@pytest.mark.parametrize("stale", [True, False])
@pytest.mark.parametrize(
    ("order", "direction"),
    [("id", "asc"), ("name", "desc"), ("nodes_count", "asc"), ("controller_last_updated", "desc")],
)
async def test_stale_walks_with_churn_return_every_survivor_once_in_order(
    admin: httpx.AsyncClient, engine: AsyncEngine, stale: bool, order: str, direction: str
) -> None:
    # the default app: CLUSTERQL_STALE_AFTER of 15 minutes, the real clock
    rng = random.Random(f"{stale}{order}{direction}")
    await _old_fleet(engine, rng)
    everything = await walks.everything(admin)
    cutoff = datetime.now(UTC) - timedelta(minutes=15)
    matching = [
        c
        for c in everything
        if (datetime.fromisoformat(c["controller_last_updated"]) < cutoff) is stale
    ]
    expected = walks.expected(matching, {}, order, direction)
    body: dict[str, Any] = {"filters": {"stale": stale}, "order_by": order, "direction": direction}
    seen: list[str] = []
    gone: set[str] = set()  # removed, or reported meanwhile (so no longer stale, or moved)
    while True:
        page = (await admin.post(URL, json={**body, "limit": rng.randint(1, 6)})).json()
        seen += [str(c["id"]) for c in page["clusters"]]
        unseen = [i for i in expected if i not in seen and i not in gone]
        if unseen:  # meanwhile: a removal, a report (fresh again, a new sort value)
            victim = rng.choice(unseen)
            await factories.remove(engine, int(victim))
            gone.add(victim)
        if len(unseen) > 1:
            spoken = rng.choice([i for i in unseen if i not in gone])
            name = next(c["name"] for c in everything if str(c["id"]) == spoken)
            await _report(admin, name)
            gone.add(spoken)
        await factories.insert(
            engine, [factories.cluster(f"late-{len(seen)}-{rng.random()}", node_count=1)]
        )
        if "next_key" not in page["pagination"]:
            break
        body["next_key"] = page["pagination"]["next_key"]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in set(expected) - gone] == [i for i in expected if i not in gone]
    assert set(seen) & {str(c["id"]) for c in everything} <= set(expected)
