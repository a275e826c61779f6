"""Filters, orders and cursors (SPEC §7): every walk returns every match once, in order."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.records import ControllerStatus, NodeStatus
from tests import factories

URL = "/runtime/api/v1/clusters"
ORDERS = [
    "id",
    "name",
    "monitored_at",
    "controller_last_updated",
    "nodes_count",
    "failed_nodes_count",
]
FILTERS: list[dict[str, Any]] = [
    {},
    {"providers": ["aws", "gcp"]},
    {"name": "PROD"},
    {"regions": ["eu-west-1"], "has_unhealthy_nodes": True},
    {"controller_statuses": ["stopped"], "has_unhealthy_nodes": False},
    # ids as JSON numbers (as REST answers them) or as strings (as next_key is)
    {"ids": [3, "5", 8, "13", 21, "34"], "providers": ["aws", "gcp", "azure"]},
]
CONNECTION = """
query Walk($first: Int, $after: String, $last: Int, $before: String, $filter: ClusterFilter,
           $orderBy: ClusterOrderField!, $direction: OrderDirection!) {
  clustersConnection(first: $first, after: $after, last: $last, before: $before, filter: $filter,
                     orderBy: $orderBy, direction: $direction) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _fleet(engine: AsyncEngine) -> None:
    """60 clusters in 3 batches (so timestamps tie within a batch), with many ties in counts."""
    rng = random.Random(5)
    for batch in range(3):
        states = []
        for i in range(20):
            statuses = rng.choice(
                [
                    [NodeStatus.MONITORED],
                    [NodeStatus.MONITORED, NodeStatus.FAILED],
                    list(NodeStatus),
                ]
            )
            states.append(
                factories.cluster(
                    "-".join(
                        [
                            rng.choice(["prod", "Prod", "staging", "dev"]),
                            rng.choice("aBc"),
                            f"{batch}{i:02d}",
                        ]
                    ),
                    node_states=factories.nodes(rng.choice([0, 1, 3, 3, 8]), statuses=statuses),
                    provider=rng.choice(["aws", "gcp", "azure", "kubernetes"]),
                    regions=rng.sample(
                        ["eu-west-1", "us-east-1", "ap-south-1"], k=rng.randint(0, 2)
                    ),
                    status=rng.choice([ControllerStatus.RUNNING, ControllerStatus.STOPPED]),
                )
            )
        await factories.insert(engine, states)


async def _everything(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    page = (await admin.post(URL, json={"limit": 100, "return_nodes": True})).json()
    assert "next_key" not in page["pagination"]
    return page["clusters"]


def _matches(c: dict[str, Any], f: dict[str, Any]) -> bool:
    unhealthy = (
        c["failed_nodes_count"] + c["failed_to_install_nodes_count"] + c["disabled_nodes_count"] > 0
    )
    return (
        ("ids" not in f or str(c["id"]) in {str(i) for i in f["ids"]})
        and ("name" not in f or f["name"].lower() in c["name"].lower())
        and ("providers" not in f or c["provider"] in f["providers"])
        and ("controller_statuses" not in f or c["controller_status"] in f["controller_statuses"])
        and ("regions" not in f or bool(set(c["regions"]) & set(f["regions"])))
        and ("has_unhealthy_nodes" not in f or unhealthy == f["has_unhealthy_nodes"])
    )


def _expected(
    clusters: list[dict[str, Any]], f: dict[str, Any], order: str, direction: str
) -> list[str]:
    chosen = [c for c in clusters if _matches(c, f)]
    chosen.sort(
        key=lambda c: (c[order] if order != "id" else int(c["id"]), int(c["id"])),
        reverse=direction == "desc",
    )
    return [str(c["id"]) for c in chosen]  # as GraphQL's IDs and REST's plain next_key are


async def _rest_walk(
    admin: httpx.AsyncClient, body: dict[str, Any], rng: random.Random
) -> tuple[list[str], set[int]]:
    seen: list[str] = []
    totals: set[int] = set()
    key: str | None = None
    while True:
        request = {**body, "limit": rng.randint(1, 7)}
        if key is not None:
            request["next_key"] = key
        response = await admin.post(URL, json=request)
        assert response.status_code == 200, response.text
        page = response.json()
        totals.add(page["total_count"])
        seen += [str(c["id"]) for c in page["clusters"]]
        key = page["pagination"].get("next_key")
        if key is None:
            return seen, totals
        plain = (
            body.get("order_by", "id") == "id"
            and body.get("direction", "asc") == "asc"
            and not body.get("filters")
        )
        assert (key == seen[-1]) is plain  # plain ids only for the vendor's default walk


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("order", ORDERS)
async def test_every_order_and_filter_walks_every_match_once_in_order(
    admin: httpx.AsyncClient, engine: AsyncEngine, order: str, direction: str
) -> None:
    await _fleet(engine)
    everything = await _everything(admin)
    rng = random.Random(f"{order}{direction}")
    for f in FILTERS:
        expected = _expected(everything, f, order, direction)
        body = {"filters": f, "order_by": order, "direction": direction}
        seen, totals = await _rest_walk(admin, body, rng)
        assert seen == expected, f
        assert totals == {len(expected)}, f


async def _connection(admin: httpx.AsyncClient, **variables: Any) -> dict[str, Any]:
    response = await admin.post("/graphql", json={"query": CONNECTION, "variables": variables})
    payload = response.json()
    assert "errors" not in payload, payload
    return payload["data"]["clustersConnection"]


@pytest.mark.parametrize(
    ("order", "direction"),
    [("ID", "ASC"), ("NAME", "DESC"), ("FAILED_NODES_COUNT", "ASC"), ("MONITORED_AT", "DESC")],
)
async def test_relay_walks_forward_and_backward_give_the_same_set_reversed(
    admin: httpx.AsyncClient, engine: AsyncEngine, order: str, direction: str
) -> None:
    await _fleet(engine)
    everything = await _everything(admin)
    rng = random.Random(order)
    for f in FILTERS[:4]:
        graphql_filter = {
            ("hasUnhealthyNodes" if k == "has_unhealthy_nodes" else k): v for k, v in f.items()
        }
        common = {"filter": graphql_filter or None, "orderBy": order, "direction": direction}
        forward: list[str] = []
        after = None
        previous = False
        while True:
            page = await _connection(admin, first=rng.randint(1, 9), after=after, **common)
            forward += [e["node"]["id"] for e in page["edges"]]
            assert page["pageInfo"]["hasPreviousPage"] is previous
            previous = bool(page["edges"]) or previous
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            assert after == page["edges"][-1]["cursor"]
        backward: list[str] = []
        before = None
        while True:
            page = await _connection(admin, last=rng.randint(1, 9), before=before, **common)
            backward = [e["node"]["id"] for e in page["edges"]] + backward
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        expected = _expected(everything, f, order.lower(), direction.lower())
        assert forward == expected, f
        assert backward == expected, f
        assert page["totalCount"] == len(expected)


async def test_inserts_removals_and_updates_during_a_walk_do_not_skip_or_repeat_survivors(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _fleet(engine)
    everything = await _everything(admin)
    rng = random.Random(9)
    for order, direction in [
        ("name", "asc"),
        ("nodes_count", "desc"),
        ("id", "asc"),
        ("monitored_at", "asc"),
    ]:
        body: dict[str, Any] = {"order_by": order, "direction": direction, "limit": 4}
        seen: list[str] = []
        removed: set[str] = set()
        while True:
            page = (await admin.post(URL, json=body)).json()
            seen += [str(c["id"]) for c in page["clusters"]]
            # meanwhile: a new cluster, a removal of one not yet seen, an update of another's nodes
            [new_id] = await factories.insert(
                engine, [factories.cluster(f"late-{order}-{len(seen)}", node_count=1)]
            )
            ids = [str(c["id"]) for c in everything]
            unseen = [i for i in ids if i not in seen and i not in removed]
            if unseen:
                victim = rng.choice(unseen)
                await factories.remove(engine, int(victim))
                removed.add(victim)
            if "next_key" not in page["pagination"]:
                break
            body["next_key"] = page["pagination"]["next_key"]
        survivors = [i for i in _expected(everything, {}, order, direction) if i not in removed]
        original = {str(c["id"]) for c in everything}
        assert [i for i in seen if i in original] == survivors
        assert len(seen) == len(set(seen))
        everything = [c for c in everything if str(c["id"]) not in removed]
        assert new_id  # late clusters may or may not appear, but never twice


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"filters": {"provider": ["aws"]}},
            ["filters", "'provider'", "providers", "has_unhealthy_nodes"],
        ),
        ({"filters": ["aws"]}, ["filters", "object"]),
        ({"filters": {"providers": "aws"}}, ["filters.providers", "list of strings"]),
        ({"filters": {"providers": []}}, ["providers", "empty list"]),
        ({"filters": {"name": 5}}, ["filters.name", "string"]),
        (
            {"filters": {"has_unhealthy_nodes": "yes"}},
            ["filters.has_unhealthy_nodes", "true or false"],
        ),
        ({"filters": {"controller_statuses": ["paused"]}}, ["'paused'", "running, stopped"]),
        ({"filters": {"ids": ["x1"]}}, ["ids", "'x1'"]),
        ({"filters": {"ids": [True]}}, ["filters.ids", "numbers or decimal strings", "True"]),
        ({"filters": {"ids": [1.5]}}, ["filters.ids", "1.5"]),
        ({"order_by": "size"}, ["order_by", "name", "failed_nodes_count", "'size'"]),
        ({"order_by": "NAME"}, ["order_by"]),
        ({"direction": "up"}, ["direction", "asc, desc"]),
        ({"order_by": "name", "next_key": "12"}, ["next key", "not a cursor"]),
    ],
)
async def test_bad_filters_orders_and_keys_are_400_listing_what_is_allowed(
    admin: httpx.AsyncClient, body: dict[str, Any], words: list[str]
) -> None:
    response = await admin.post(URL, json=body)
    assert response.status_code == 400, response.text
    for word in words:
        assert word in response.json()["error"], (word, response.json()["error"])


async def test_cursors_are_refused_when_altered_truncated_foreign_or_for_another_query(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster(f"c{i}", provider="aws") for i in range(6)])
    body = {"order_by": "name", "filters": {"providers": ["aws"]}, "limit": 2}
    cursor = (await admin.post(URL, json=body)).json()["pagination"]["next_key"]
    assert (await admin.post(URL, json={**body, "next_key": cursor})).status_code == 200
    version, payload, mac = cursor.split(".")
    flipped = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
    cases = {
        "altered": f"{version}.{flipped}.{mac}",
        "truncated": cursor[:-4],
        "foreign version": f"2.{payload}.{mac}",
        "garbage": "not-a-cursor",
    }
    for case, bad in cases.items():
        response = await admin.post(URL, json={**body, "next_key": bad})
        assert response.status_code == 400, case
        assert "cursor" in response.json()["error"], case
    for other in (
        {**body, "order_by": "nodes_count"},
        {**body, "direction": "desc"},
        {**body, "filters": {"providers": ["gcp"]}},
    ):
        response = await admin.post(URL, json={**other, "next_key": cursor})
        assert response.status_code == 400
        assert "other filters or another order" in response.json()["error"]


async def test_filters_and_orders_exist_in_graphql_too(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(
        engine,
        [
            factories.cluster("b-aws", provider="aws", node_count=2),
            factories.cluster("a-gcp", provider="gcp", node_count=5),
        ],
    )
    query = """{ clusters(orderBy: NAME, direction: DESC, filter: {providers: ["aws", "gcp"]}) {
        totalCount clusters { name } pagination { nextKey } } }"""
    page = (await admin.post("/graphql", json={"query": query})).json()["data"]["clusters"]
    assert [c["name"] for c in page["clusters"]] == ["b-aws", "a-gcp"]
    assert page["totalCount"] == 2
    bad = (
        await admin.post(
            "/graphql", json={"query": "{ clustersConnection(first: 1, last: 1) { totalCount } }"}
        )
    ).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad = (
        await admin.post(
            "/graphql", json={"query": "{ clustersConnection(first: 101) { totalCount } }"}
        )
    ).json()
    assert "between 1 and 100" in bad["errors"][0]["message"]


async def test_timestamp_orders_keep_microseconds_in_cursors(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for i in range(5):
        await factories.insert(engine, [factories.cluster(f"t{i}")])
    walk, _ = await _rest_walk(
        admin, {"order_by": "controller_last_updated", "direction": "desc"}, random.Random(1)
    )
    assert len(walk) == len(set(walk)) == 5
