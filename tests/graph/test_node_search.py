"""`nodes(filter:, first:, after:, last:, before:)` (SPEC §11): each filter against an answer
computed here, walks both ways with random page sizes, and `Node.cluster` batched."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.records import NodeStatus
from tests import factories

NODES = """query N($filter: NodeFilter, $first: Int, $after: String, $last: Int, $before: String) {
  nodes(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id name hostname internalIp status sensorInstalled sensorVersion
                          region architecture cluster { id name } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
FILTERS: list[dict[str, Any]] = [
    {},
    {"statuses": ["FAILED", "DISABLED"]},
    {"sensorInstalled": False},
    {"sensorInstalled": True, "sensorVersions": ["5.3"]},
    {"name": "N-1"},
    {"hostname": "ZONE-B"},
    {"internalIp": "10.0.1.7"},
    {"regions": ["us-east-1"], "architectures": ["arm64"]},
]


async def _fleet(engine: AsyncEngine) -> list[int]:
    rng = random.Random(7)
    states = []
    for c in range(8):
        node_states = []
        for i in range(rng.randint(0, 9)):
            status = rng.choice(list(NodeStatus))
            installed = status is NodeStatus.MONITORED_WITH_SENSOR
            node_states.append(
                factories.node(
                    f"n-{i}",
                    status,
                    hostname=f"host-{c}-{i}.zone-{rng.choice('abc')}",
                    sensor_installed=installed,
                    sensor_version=rng.choice(["5.3", "5.4"]) if installed else "",
                    internal_ip=rng.choice(["10.0.1.7", "10.0.1.8", "10.0.2.1"]),
                    region=rng.choice(["eu-west-1", "us-east-1"]),
                    architecture=rng.choice(["amd64", "arm64"]),
                )
            )
        states.append(factories.cluster(f"c-{c}", node_states=node_states))
    return await factories.insert(engine, states)


def _matches(n: dict[str, Any], f: dict[str, Any]) -> bool:
    return (
        ("statuses" not in f or n["status"] in f["statuses"])
        and ("sensorInstalled" not in f or n["sensorInstalled"] == f["sensorInstalled"])
        and ("sensorVersions" not in f or n["sensorVersion"] in f["sensorVersions"])
        and ("name" not in f or f["name"].lower() in n["name"].lower())
        and ("hostname" not in f or f["hostname"].lower() in n["hostname"].lower())
        and ("internalIp" not in f or n["internalIp"] == f["internalIp"])
        and ("regions" not in f or n["region"] in f["regions"])
        and ("architectures" not in f or n["architecture"] in f["architectures"])
        and ("clusterIds" not in f or n["cluster"]["id"] in f["clusterIds"])
    )


async def _page(admin: httpx.AsyncClient, **variables: Any) -> dict[str, Any]:
    response = await admin.post("/graphql", json={"query": NODES, "variables": variables})
    payload = response.json()
    assert "errors" not in payload, payload
    page: dict[str, Any] = payload["data"]["nodes"]
    return page


async def _everything(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = await _page(admin, first=100, after=after)
        found += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_each_filter_walks_its_matches_by_id_forward_and_backward(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await _fleet(engine)
    everything = await _everything(admin)
    assert [int(n["id"]) for n in everything] == sorted(int(n["id"]) for n in everything)
    assert {n["cluster"]["id"] for n in everything} <= {str(i) for i in ids}
    rng = random.Random(3)
    for f in [*FILTERS, {"clusterIds": [str(ids[1]), str(ids[4])], "statuses": ["MONITORED"]}]:
        expected = [n for n in everything if _matches(n, f)]
        forward: list[dict[str, Any]] = []
        after = None
        while True:
            page = await _page(admin, filter=f, first=rng.randint(1, 5), after=after)
            assert page["totalCount"] == len(expected), f
            forward += [e["node"] for e in page["edges"]]
            assert page["pageInfo"]["hasPreviousPage"] is (after is not None and bool(forward))
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert forward == expected, f
        backward: list[dict[str, Any]] = []
        before = None
        while True:
            page = await _page(admin, filter=f, last=rng.randint(1, 5), before=before)
            backward = [e["node"] for e in page["edges"]] + backward
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        assert backward == expected, f


async def test_node_cursors_are_refused_for_another_filter_or_as_cluster_cursors(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _fleet(engine)
    cursor = (await _page(admin, filter={"sensorInstalled": False}, first=1))["pageInfo"][
        "endCursor"
    ]
    for query, variables in [
        (NODES, {"filter": {"sensorInstalled": True}, "first": 1, "after": cursor}),
        (NODES, {"first": 1, "after": cursor[:-2]}),
        ("query C($a: String) { clustersConnection(after: $a) { totalCount } }", {"a": cursor}),
    ]:
        response = await admin.post("/graphql", json={"query": query, "variables": variables})
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "after" in error["message"]


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"first": 0}, ["first", "between 1 and 100"]),
        ({"last": 101}, ["last", "between 1 and 100"]),
        ({"first": 2, "last": 2}, ["not both"]),
        ({"filter": {"statuses": []}}, ["statuses", "empty list"]),
        ({"filter": {"clusterIds": ["x"]}}, ["clusterIds", "'x'"]),
        ({"filter": {"name": ""}}, ["filter name", "must not be empty"]),
        ({"filter": {"name": "n" * 254}}, ["filter name", "at most 253"]),
        # what no report can store is refused, not searched for (NUL would fail PostgreSQL)
        ({"filter": {"name": "a\u0000b"}}, ["filter name", "control or format", "U+0000"]),
        ({"filter": {"hostname": "h\u202e"}}, ["filter hostname", "U+202E"]),
        ({"filter": {"internalIp": "10.0.1"}}, ["filter internalIp", "IPv4 or IPv6"]),
        ({"filter": {"internalIp": "fe80::1%\u001b"}}, ["filter internalIp"]),
        ({"filter": {"sensorVersions": ["5.3", "\u0000"]}}, ["sensorVersions[1]", "U+0000"]),
        ({"filter": {"regions": ["x" * 254]}}, ["regions[0]", "at most 253"]),
        ({"filter": {"architectures": ["arm64\u200b"]}}, ["architectures[0]", "U+200B"]),
    ],
)
async def test_bad_node_searches_are_bad_user_input_saying_what_to_fix(
    admin: httpx.AsyncClient, variables: dict[str, Any], words: list[str]
) -> None:
    response = await admin.post("/graphql", json={"query": NODES, "variables": variables})
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    for word in words:
        assert word in error["message"], (word, error["message"])
