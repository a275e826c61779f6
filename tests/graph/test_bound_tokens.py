"""Bound controller tokens (SPEC §3): what a Controller token may report, through /graphql.

Each attack of issue 13 is tried and refused: squatting another cluster's name, taking over a
removed one, learning which names exist from the refusal, one request registering many clusters;
and what must keep working: a rotated secret reports its clusters, an Admin reports any.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from clusterql.app import create_app
from clusterql.database import resources
from clusterql.settings import Settings
from models.bindings import OUTSIDE_BINDING
from models.engine import read_transaction, write_transaction
from models.tables import clusters
from models.tokens import Permission, digest, find_active, revoke
from tests import factories
from tests.databases import migrated_database_url
from tests.documents import REMOVE, REPORT

CAP = 3
LIST = "{ clusters(limit: 100) { clusters { id name nodesCount } } }"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    """The app, with a cap of CAP clusters per Controller token."""
    settings = Settings(
        database_url=await migrated_database_url(tmp_path), controller_max_clusters=CAP
    )
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


def report(name: str, *nodes: str) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "aws",
        "regions": ["eu-west-1"],
        "controllerVersion": "3.2.0",
        "controllerStatus": "RUNNING",
        "nodes": [
            {
                "name": n,
                "hostname": f"{n}.internal",
                "status": "MONITORED",
                "sensorInstalled": False,
            }
            for n in nodes
        ],
    }


async def post(
    client: httpx.AsyncClient, secret: str, query: str, **variables: Any
) -> httpx.Response:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200, response.text
    return response


async def registered(client: httpx.AsyncClient, secret: str, name: str, *nodes: str) -> str:
    payload = (await post(client, secret, REPORT, input=report(name, *nodes))).json()
    assert "errors" not in payload, payload
    cluster_id: str = payload["data"]["reportCluster"]["id"]
    return cluster_id


def refusal(response: httpx.Response) -> dict[str, Any]:
    payload: dict[str, Any] = response.json()
    assert payload["data"] is None
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    return error


async def names(client: httpx.AsyncClient, admin: str) -> dict[str, int]:
    """Every live cluster's name and node count."""
    payload = (await post(client, admin, LIST)).json()
    return {c["name"]: c["nodesCount"] for c in payload["data"]["clusters"]["clusters"]}


async def holder(engine: AsyncEngine, cluster_id: str) -> int | None:
    """The id of the token that holds a cluster (its last reporting Controller token)."""
    async with read_transaction(engine) as conn:
        query = select(clusters.c.owner_token_id).where(clusters.c.id == int(cluster_id))
        found: int | None = (await conn.execute(query)).scalar_one()
    return found


async def token_id(engine: AsyncEngine, secret: str) -> int:
    async with read_transaction(engine) as conn:
        found = await find_active(conn, digest(secret), datetime.now(UTC))
    assert found is not None
    return found[0].token_id


async def test_a_controller_cannot_squat_a_name_outside_its_binding(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_secret: str
) -> None:
    # Given the controller of team A, bound to its own clusters' pattern
    team_a = await factories.token(engine, Permission.CONTROLLER, clusters=["team-a-*"])
    team_b = await factories.token(engine, Permission.CONTROLLER, clusters=["team-b-web"])

    # When it reports the name team B's controller is about to report
    squat = await post(client, team_a, REPORT, input=report("team-b-web", "x"))

    # Then it is refused, nothing is registered, and the real owner registers it
    assert refusal(squat)["message"] == OUTSIDE_BINDING
    assert await names(client, admin_secret) == {}
    await registered(client, team_b, "team-b-web", "n1", "n2")
    await registered(client, team_a, "team-a-api", "n1")
    assert await names(client, admin_secret) == {"team-b-web": 2, "team-a-api": 1}
    # and the squatter cannot overwrite it now that it exists either
    assert refusal(await post(client, team_a, REPORT, input=report("team-b-web")))
    assert (await names(client, admin_secret))["team-b-web"] == 2


async def test_a_name_freed_by_removal_cannot_be_taken_by_a_token_not_bound_to_it(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_secret: str
) -> None:
    # Given prod-eu registered by its controller, then removed by an Admin
    owner = await factories.token(engine, Permission.CONTROLLER, clusters=["prod-eu"])
    other = await factories.token(engine, Permission.CONTROLLER, clusters=["prod-us", "dev-*"])
    first = await registered(client, owner, "prod-eu", "n1")
    removed = (await post(client, admin_secret, REMOVE, id=first)).json()
    assert removed == {"data": {"removeCluster": True}}

    # When another controller reports the freed name, then it is refused
    assert refusal(await post(client, other, REPORT, input=report("prod-eu", "evil")))
    assert await names(client, admin_secret) == {}

    # And the controller bound to it registers it again, under a new id
    second = await registered(client, owner, "prod-eu", "n1")
    assert int(second) > int(first)


async def test_the_refusal_is_byte_identical_for_a_registered_a_removed_and_a_free_name(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_secret: str
) -> None:
    # Given one registered name, one removed name and one never used, none in the prober's binding
    owner = await factories.token(engine, Permission.CONTROLLER, clusters=["live", "gone"])
    prober = await factories.token(engine, Permission.CONTROLLER, clusters=["mine"])
    await registered(client, owner, "live", "n1")
    gone = await registered(client, owner, "gone", "n1")
    await post(client, admin_secret, REMOVE, id=gone)

    # When the prober reports each (the name in the variables, the document the same)
    bodies = {
        name: (await post(client, prober, REPORT, input=report(name, "n1"))).content
        for name in ("live", "gone", "never-registered")
    }

    # Then the three answers are the same bytes: nothing tells which names exist
    assert len(set(bodies.values())) == 1, bodies
    assert OUTSIDE_BINDING.encode() in bodies["live"]


async def test_a_rotated_secret_keeps_reporting_its_cluster_and_the_old_one_stops(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_secret: str
) -> None:
    # Given a controller that registered its cluster
    old = await factories.token(engine, Permission.CONTROLLER, clusters=["prod-eu"], name="eu-1")
    cluster_id = await registered(client, old, "prod-eu", "n1")

    # When its secret is rotated: a new token with the same binding, then the old one revoked
    new = await factories.token(engine, Permission.CONTROLLER, clusters=["prod-eu"], name="eu-2")
    async with write_transaction(engine) as conn:
        await revoke(conn, "eu-1", datetime.now(UTC))

    # Then the new secret reports the same cluster (same id, nodes replaced) and now holds it
    assert await registered(client, new, "prod-eu", "n1", "n2") == cluster_id
    assert await names(client, admin_secret) == {"prod-eu": 2}
    assert await holder(engine, cluster_id) == await token_id(engine, new)
    # and the old secret is refused at the door
    response = await client.post(
        "/graphql",
        json={"query": REPORT, "variables": {"input": report("prod-eu")}},
        headers={"Authorization": f"Bearer {old}"},
    )
    assert response.status_code == 401


async def test_a_controller_token_holds_at_most_the_cap_of_clusters(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_secret: str
) -> None:
    # Given a fleet token that registered CAP clusters
    fleet = await factories.token(engine, Permission.CONTROLLER, clusters=["edge-*"])
    ids = [await registered(client, fleet, f"edge-{i}", "n1") for i in range(CAP)]

    # When it registers one more, then it is refused, naming the limit
    over = refusal(await post(client, fleet, REPORT, input=report(f"edge-{CAP}")))
    assert f"already holds {CAP} clusters" in over["message"]
    assert "CLUSTERQL_CONTROLLER_MAX_CLUSTERS" in over["message"]
    assert f"edge-{CAP}" not in await names(client, admin_secret)

    # And the clusters it holds still report
    assert await registered(client, fleet, "edge-0", "n1", "n2") == ids[0]

    # And a second token of the same fleet at its cap cannot take one over
    second = await factories.token(engine, Permission.CONTROLLER, clusters=["edge-*", "core-*"])
    for i in range(CAP):
        await registered(client, second, f"core-{i}", "n1")
    assert refusal(await post(client, second, REPORT, input=report("edge-1")))
    assert await holder(engine, ids[1]) == await token_id(engine, fleet)

    # And once an Admin removes one, the first registers again; an Admin has no cap
    await post(client, admin_secret, REMOVE, id=ids[2])
    await registered(client, fleet, f"edge-{CAP}", "n1")
    for i in range(CAP + 1):
        await registered(client, admin_secret, f"admin-{i}")


ALIASED = """
mutation Many($a: ClusterReport!, $b: ClusterReport!) {
  a: reportCluster(input: $a) { id }
  b: reportCluster(input: $b) { id }
}
"""
SPREAD = """
mutation Spread($a: ClusterReport!) {
  ...One
  ... on Mutation { again: reportCluster(input: $a) { id } }
}
fragment One on Mutation { reportCluster(input: $a) { id } }
"""


@pytest.mark.parametrize("document", [ALIASED, SPREAD], ids=["aliases", "fragments"])
async def test_an_operation_with_more_than_one_report_is_refused_before_any_statement(
    client: httpx.AsyncClient,
    app: Starlette,
    engine: AsyncEngine,
    admin_secret: str,
    document: str,
) -> None:
    # Given a controller bound to every name
    controller = await factories.token(engine, Permission.CONTROLLER, clusters=["*"])
    statements: list[str] = []
    event.listen(
        resources(app).engine.sync_engine,
        "before_cursor_execute",
        lambda *args: statements.append(str(args[2])),
    )

    # When it sends two reports in one operation
    answer = (await post(client, controller, document, a=report("one"), b=report("two"))).json()

    # Then the operation is refused as bad input, naming the rule, and nothing was registered
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["limit"] == "reportCluster"
    assert error["extensions"]["figure"] == 2
    assert "at most 1" in error["message"]
    # Only the request's token lookup ran: no statement of the operation's
    assert not [s for s in statements if "clusters" in s or "nodes" in s], statements
    assert await names(client, admin_secret) == {}


async def test_concurrent_registrations_of_one_token_never_pass_its_cap(
    client: httpx.AsyncClient, engine: AsyncEngine, admin_secret: str
) -> None:
    # Given a fleet token, when it registers twice its cap of new names at once
    fleet = await factories.token(engine, Permission.CONTROLLER, clusters=["burst-*"])
    answers = await asyncio.gather(
        *(post(client, fleet, REPORT, input=report(f"burst-{i}", "n1")) for i in range(2 * CAP))
    )

    # Then exactly CAP were registered and the others refused by the cap
    payloads = [a.json() for a in answers]
    refused = [p for p in payloads if "errors" in p]
    assert len(refused) == CAP, payloads
    assert all("CLUSTERQL_CONTROLLER_MAX_CLUSTERS" in p["errors"][0]["message"] for p in refused)
    assert len(await names(client, admin_secret)) == CAP
