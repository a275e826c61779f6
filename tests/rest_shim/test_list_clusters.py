"""Get Clusters List (SPEC §4): paging, shapes and the vendor's quirks."""

from __future__ import annotations

import random

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import factories

URL = "/runtime/api/v1/clusters"
CLUSTER_KEYS = {
    "monitored_at", "id", "name", "controller_version", "controller_status",
    "controller_last_updated", "provider", "regions", "nodes_count", "running_nodes_count",
    "failed_nodes_count", "failed_to_install_nodes_count", "disabled_nodes_count",
}  # fmt: skip
NODE_KEYS = {
    "id", "monitored_at", "name", "sensor_installed", "sensor_last_updated", "sensor_version",
    "region", "architecture", "hostname", "internal_dns", "internal_ip", "status",
}  # fmt: skip


async def test_a_walk_with_random_limits_returns_every_cluster_once_in_id_order(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await factories.insert(engine, [factories.cluster(node_count=1) for _ in range(137)])
    rng = random.Random(7)
    seen: list[int] = []
    body: dict[str, object] = {}
    totals = set()
    while True:
        limit = rng.randint(1, 100)
        page = (await admin.post(URL, json={**body, "limit": limit})).json()
        totals.add(page["total_count"])
        assert page["pagination"]["limit"] == limit
        assert len(page["clusters"]) <= limit
        seen += [c["id"] for c in page["clusters"]]
        if "next_key" not in page["pagination"]:
            break
        assert page["pagination"]["next_key"] == str(page["clusters"][-1]["id"])
        body = {"next_key": page["pagination"]["next_key"]}
    assert seen == ids
    assert totals == {137}


async def test_defaults_give_ten_clusters_with_exactly_the_thirteen_keys(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster() for _ in range(12)])
    response = await admin.post(URL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    page = response.json()
    assert page["total_count"] == 12
    assert page["pagination"] == {"limit": 10, "next_key": str(page["clusters"][-1]["id"])}
    assert len(page["clusters"]) == 10
    for c in page["clusters"]:
        assert set(c) == CLUSTER_KEYS
        assert type(c["id"]) is int  # a JSON number, as in the vendor's example; next_key a string
        assert c["controller_status"] == "running"


async def test_the_last_page_has_no_next_key(admin: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await factories.insert(engine, [factories.cluster() for _ in range(3)])
    page = (await admin.post(URL, json={"limit": 3})).json()
    assert page["pagination"] == {"limit": 3}
    assert len(page["clusters"]) == 3


async def test_an_empty_service_answers_an_empty_page(admin: httpx.AsyncClient) -> None:
    page = (await admin.post(URL, json={})).json()
    assert page == {"total_count": 0, "pagination": {"limit": 10}, "clusters": []}


async def test_return_nodes_gives_all_nodes_by_id_with_twelve_keys_and_matching_counts(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster(node_count=n) for n in (0, 1, 7, 23)])
    page = (await admin.post(URL, json={"return_nodes": True})).json()
    assert [c["nodes_count"] for c in page["clusters"]] == [0, 1, 7, 23]
    for c in page["clusters"]:
        assert set(c) == CLUSTER_KEYS | {"nodes"}
        assert len(c["nodes"]) == c["nodes_count"]
        assert [n["id"] for n in c["nodes"]] == sorted(n["id"] for n in c["nodes"])
        statuses = [n["status"] for n in c["nodes"]]
        assert c["failed_nodes_count"] == statuses.count("failed")
        assert c["disabled_nodes_count"] == statuses.count("disabled")
        assert c["failed_to_install_nodes_count"] == statuses.count("installation_failed")
        assert c["running_nodes_count"] == sum(
            s in ("monitored", "monitored_with_sensor") for s in statuses
        )
        for n in c["nodes"]:
            assert set(n) == NODE_KEYS
            assert isinstance(n["id"], int)


async def test_timestamps_are_utc_rfc3339_with_microseconds(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster()])
    c = (await admin.post(URL, json={"return_nodes": True})).json()["clusters"][0]
    pattern = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"
    import re

    for value in (c["monitored_at"], c["controller_last_updated"], c["nodes"][0]["monitored_at"]):
        assert re.match(pattern, value), value


async def test_the_vendor_example_limit_string_and_last_key_are_tolerated(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await factories.insert(engine, [factories.cluster() for _ in range(5)])
    page = (await admin.post(URL, json={"limit": "2", "last_key": str(ids[1])})).json()
    assert [c["id"] for c in page["clusters"]] == [ids[2], ids[3]]
    assert page["pagination"]["limit"] == 2


async def test_an_integer_next_key_is_taken_as_its_decimal_string(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await factories.insert(engine, [factories.cluster() for _ in range(3)])
    page = (await admin.post(URL, json={"next_key": ids[0]})).json()
    assert [c["id"] for c in page["clusters"]] == [ids[1], ids[2]]


async def test_empty_or_null_next_key_and_equal_synonyms_start_at_the_first_page(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await factories.insert(engine, [factories.cluster() for _ in range(2)])
    for body in ({"next_key": ""}, {"next_key": None}, {"next_key": "", "last_key": ""}):
        page = (await admin.post(URL, json=body)).json()
        assert [c["id"] for c in page["clusters"]] == ids, body


async def test_a_next_key_never_assigned_is_404(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await factories.insert(engine, [factories.cluster()])
    for key in (str(ids[-1] + 1), "0", str(2**63 - 1)):
        response = await admin.post(URL, json={"next_key": key})
        assert response.status_code == 404, key
        assert set(response.json()) == {"error"}
        assert key in response.json()["error"]


async def test_removed_clusters_are_hidden_and_their_id_continues_the_walk(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await factories.insert(engine, [factories.cluster() for _ in range(4)])
    first = (await admin.post(URL, json={"limit": 2})).json()
    await factories.remove(engine, ids[1])  # the page's next_key is now a tombstone
    rest = (await admin.post(URL, json={"next_key": first["pagination"]["next_key"]})).json()
    assert [c["id"] for c in rest["clusters"]] == [ids[2], ids[3]]
    assert rest["total_count"] == 3
    everything = (await admin.post(URL, json={"limit": 100})).json()
    assert ids[1] not in [c["id"] for c in everything["clusters"]]
