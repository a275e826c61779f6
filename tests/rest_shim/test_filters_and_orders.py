"""Filters, orders and cursors (SPEC §7): every walk returns every match once, in order."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rest_shim.list_request import ORDERS
from tests import factories, walks

URL = "/runtime/api/v1/clusters"


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
    await walks.fleet(engine)
    everything = await walks.everything(admin)
    rng = random.Random(f"{order}{direction}")
    for f in walks.FILTERS:
        expected = walks.expected(everything, f, order, direction)
        body = {"filters": f, "order_by": order, "direction": direction}
        seen, totals = await _rest_walk(admin, body, rng)
        assert seen == expected, f
        assert totals == {len(expected)}, f


async def test_inserts_removals_and_updates_during_a_walk_do_not_skip_or_repeat_survivors(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await walks.fleet(engine)
    everything = await walks.everything(admin)
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
        survivors = [
            i for i in walks.expected(everything, {}, order, direction) if i not in removed
        ]
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


async def test_timestamp_orders_keep_microseconds_in_cursors(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for i in range(5):
        await factories.insert(engine, [factories.cluster(f"t{i}")])
    walk, _ = await _rest_walk(
        admin, {"order_by": "controller_last_updated", "direction": "desc"}, random.Random(1)
    )
    assert len(walk) == len(set(walk)) == 5
