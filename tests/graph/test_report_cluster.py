"""Controller reports (SPEC §8) through the reportCluster and removeCluster mutations."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.tokens import Permission
from tests import factories
from tests.documents import REMOVE

REPORT = """
mutation Report($input: ClusterReport!) {
  reportCluster(input: $input) {
    id name monitoredAt controllerLastUpdated controllerStatus controllerVersion provider regions
    nodesCount runningNodesCount failedNodesCount failedToInstallNodesCount disabledNodesCount
    nodes { id name status monitoredAt hostname internalIp sensorLastUpdated }
  }
}
"""
ONE = "query One($id: ID!) { cluster(id: $id) { id name nodesCount nodes { id name status } } }"
LIST = "/runtime/api/v1/clusters"


def report(name: str, nodes: list[tuple[str, str]], **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "aws",
        "regions": ["us-east-1", "eu-west-1", "us-east-1"],
        "controllerVersion": "2.0.1",
        "controllerStatus": "RUNNING",
        "nodes": [
            {"name": n, "hostname": f"{n}.local", "status": s, "sensorInstalled": True}
            for n, s in nodes
        ],
        **fields,
    }


async def send(
    client: httpx.AsyncClient, secret: str, query: str, **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def reported(client: httpx.AsyncClient, secret: str, state: dict[str, Any]) -> dict[str, Any]:
    payload = await send(client, secret, REPORT, input=state)
    assert "errors" not in payload, payload
    return payload["data"]["reportCluster"]


def by_name(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in cluster["nodes"]}


async def test_the_first_report_registers_the_cluster_with_its_nodes(
    client: httpx.AsyncClient, controller_secret: str
) -> None:
    cluster = await reported(
        client, controller_secret, report("prod-eu", [("a", "MONITORED"), ("b", "FAILED")])
    )
    assert cluster["name"] == "prod-eu"
    assert cluster["regions"] == ["eu-west-1", "us-east-1"]
    assert cluster["monitoredAt"] == cluster["controllerLastUpdated"]
    assert (cluster["nodesCount"], cluster["runningNodesCount"], cluster["failedNodesCount"]) == (
        2,
        1,
        1,
    )
    assert [n["name"] for n in cluster["nodes"]] == ["a", "b"]


async def test_nodes_are_matched_by_name_across_reports(
    client: httpx.AsyncClient, controller_secret: str
) -> None:
    first = await reported(
        client,
        controller_secret,
        report("c", [("a", "MONITORED"), ("b", "MONITORED"), ("c", "DISABLED")]),
    )
    second = await reported(
        client,
        controller_secret,
        report("c", [("b", "FAILED"), ("c", "DISABLED"), ("d", "INSTALLATION_FAILED")]),
    )
    assert second["id"] == first["id"]
    assert second["monitoredAt"] == first["monitoredAt"]
    assert second["controllerLastUpdated"] > first["controllerLastUpdated"]
    before, after = by_name(first), by_name(second)
    assert set(after) == {"b", "c", "d"}  # a dropped, d added
    for kept in ("b", "c"):
        assert after[kept]["id"] == before[kept]["id"]
        assert after[kept]["monitoredAt"] == before[kept]["monitoredAt"]
    assert after["b"]["status"] == "FAILED"
    assert int(after["d"]["id"]) > max(int(n["id"]) for n in first["nodes"])
    assert (
        second["failedNodesCount"],
        second["failedToInstallNodesCount"],
        second["disabledNodesCount"],
    ) == (1, 1, 1)
    assert second["runningNodesCount"] == 0

    renamed = await reported(
        client,
        controller_secret,
        report("c", [("b", "FAILED"), ("c", "DISABLED"), ("e", "MONITORED")]),
    )
    assert "d" not in by_name(renamed)
    assert int(by_name(renamed)["e"]["id"]) > int(after["d"]["id"])  # ids are never reused


async def test_the_same_report_twice_leaves_the_same_state(
    client: httpx.AsyncClient, controller_secret: str
) -> None:
    state = report("twice", [(f"n{i}", "MONITORED_WITH_SENSOR") for i in range(5)])
    first = await reported(client, controller_secret, state)
    second = await reported(client, controller_secret, state)
    first.pop("controllerLastUpdated")
    second.pop("controllerLastUpdated")
    assert first == second


async def test_optional_node_fields_are_stored_and_timestamps_normalised_to_utc(
    client: httpx.AsyncClient, controller_secret: str
) -> None:
    state = report("opt", [])
    state["nodes"] = [
        {
            "name": "n1",
            "hostname": "h1",
            "status": "MONITORED_WITH_SENSOR",
            "sensorInstalled": True,
            "sensorVersion": "5.1.0",
            "sensorLastUpdated": "2025-01-02T03:04:05.5+02:00",
            "region": "eu-west-1",
            "architecture": "arm64",
            "internalDns": "n1.internal",
            "internalIp": "fd00::1",
        },
    ]
    [n] = (await reported(client, controller_secret, state))["nodes"]
    assert n["sensorLastUpdated"] == "2025-01-02T01:04:05.500000Z"
    assert n["internalIp"] == "fd00::1"


async def test_a_controller_cannot_touch_a_cluster_outside_its_binding(
    client: httpx.AsyncClient, engine: AsyncEngine, controller_secret: str, admin_secret: str
) -> None:
    other = await factories.token(engine, Permission.CONTROLLER, clusters=["other-*"])
    mine = await reported(client, controller_secret, report("owned", [("a", "MONITORED")]))
    payload = await send(client, other, REPORT, input=report("owned", [("x", "FAILED")]))
    assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert payload["data"] is None
    stored = (await send(client, admin_secret, ONE, id=mine["id"]))["data"]["cluster"]
    assert [n["name"] for n in stored["nodes"]] == ["a"]
    # an administrator may update any cluster
    assert (await reported(client, admin_secret, report("owned", [("z", "MONITORED")])))[
        "id"
    ] == mine["id"]


def _too_many() -> dict[str, Any]:
    return report("big", [(f"n{i}", "MONITORED") for i in range(5001)])


def _with_node(**node: Any) -> dict[str, Any]:
    state = report("bad", [("ok", "MONITORED")])
    state["nodes"][0].update(node)
    return state


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (_too_many(), ["at most 5000 nodes", "5001"]),
        (
            report("bad", [("a", "MONITORED"), ("b", "FAILED"), ("a", "FAILED")]),
            ["nodes[2].name", "'a'", "twice"],
        ),
        (report("", [("a", "MONITORED")]), ["name must not be empty"]),
        (report("x" * 254, []), ["name", "254", "at most 253"]),
        (report("bad", [], provider="p" * 65), ["provider", "at most 64"]),
        (report("bad", [], provider=" "), ["provider must not begin or end with whitespace"]),
        (report("bad", [("", "MONITORED")]), ["nodes[0].name must not be empty"]),
        (report("bad", [("a", "SLEEPING")]), ["SLEEPING"]),
        (report("bad", [], controllerStatus="PAUSED"), ["PAUSED"]),
        (_with_node(sensorLastUpdated="yesterday"), ["yesterday", "RFC 3339"]),
        (_with_node(sensorLastUpdated="2025-01-02T03:04:05"), ["time zone"]),
        (_with_node(internalIp="10.0.0.300"), ["nodes[0].internalIp", "10.0.0.300"]),
        (_with_node(hostname="a\nb"), ["nodes[0].hostname", "control or format", "U+000A"]),
    ],
)
async def test_a_rejected_report_is_bad_user_input_and_changes_nothing(
    client: httpx.AsyncClient,
    controller_secret: str,
    admin_secret: str,
    state: dict[str, Any],
    words: list[str],
) -> None:
    target = state["name"] if 0 < len(state["name"]) <= 253 else "bad"  # what it would change
    existing = await reported(client, controller_secret, report(target, [("keep", "MONITORED")]))
    payload = await send(client, controller_secret, REPORT, input=state)
    assert payload["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    for word in words:
        assert word in payload["errors"][0]["message"]
    stored = (await send(client, admin_secret, ONE, id=existing["id"]))["data"]["cluster"]
    assert [n["name"] for n in stored["nodes"]] == ["keep"]
    listed = (
        await client.post(
            LIST, json={"limit": 100}, headers={"Authorization": f"Bearer {admin_secret}"}
        )
    ).json()
    assert listed["total_count"] == 1


async def test_remove_cluster_hides_it_and_a_new_report_registers_a_new_id(
    client: httpx.AsyncClient, controller_secret: str, admin_secret: str
) -> None:
    first = await reported(client, controller_secret, report("gone", [("a", "MONITORED")]))
    later = await reported(client, controller_secret, report("stays", []))
    assert (await send(client, controller_secret, REMOVE, id=first["id"]))["errors"][0][
        "extensions"
    ]["code"] == "FORBIDDEN"
    assert (await send(client, admin_secret, REMOVE, id=first["id"]))["data"] == {
        "removeCluster": True
    }
    assert (await send(client, admin_secret, REMOVE, id=first["id"]))["data"] == {
        "removeCluster": False
    }
    assert (await send(client, admin_secret, REMOVE, id="nonsense"))["data"] == {
        "removeCluster": False
    }
    admin = {"Authorization": f"Bearer {admin_secret}"}
    assert (
        await client.get(f"/runtime/api/v1/cluster/{first['id']}", headers=admin)
    ).status_code == 404
    walk = (await client.post(LIST, json={"next_key": first["id"]}, headers=admin)).json()
    assert [c["id"] for c in walk["clusters"]] == [int(later["id"])]
    again = await reported(client, controller_secret, report("gone", [("a", "MONITORED")]))
    assert int(again["id"]) > int(later["id"])
    assert int(by_name(again)["a"]["id"]) > int(by_name(first)["a"]["id"])


async def test_concurrent_conflicting_reports_serialize_and_readers_never_see_a_mix(
    client: httpx.AsyncClient, controller_secret: str, admin_secret: str
) -> None:
    rng = random.Random(11)
    statuses = ["MONITORED", "MONITORED_WITH_SENSOR", "FAILED", "INSTALLATION_FAILED", "DISABLED"]
    variants = [
        report(
            "contested", [(f"v{v}-n{i}", rng.choice(statuses)) for i in range(rng.randint(1, 40))]
        )
        for v in range(8)
    ]
    registered = await reported(client, controller_secret, variants[0])
    admin = {"Authorization": f"Bearer {admin_secret}"}

    async def write(state: dict[str, Any]) -> None:
        for _ in range(4):
            await reported(client, controller_secret, state)

    async def read() -> None:
        for _ in range(15):
            cluster = (
                await client.get(f"/runtime/api/v1/cluster/{registered['id']}", headers=admin)
            ).json()["cluster"]
            names = {n["name"].split("-")[0] for n in cluster["nodes"]}
            assert len(names) <= 1, "a reader saw nodes of two reports"
            assert cluster["nodes_count"] == len(cluster["nodes"])
            assert cluster["failed_nodes_count"] == sum(
                n["status"] == "failed" for n in cluster["nodes"]
            )

    await asyncio.gather(*(write(v) for v in variants), *(read() for _ in range(3)))
    final = (await send(client, admin_secret, ONE, id=registered["id"]))["data"]["cluster"]

    def content(nodes: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return sorted((n["name"], n["status"]) for n in nodes)

    matches = [v for v in variants if content(final["nodes"]) == content(v["nodes"])]
    assert len(matches) == 1
