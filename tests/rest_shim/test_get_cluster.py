"""Get Cluster (SPEC §5) in all the forms the vendor's clients call."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import factories


@pytest.mark.parametrize(
    "template",
    [
        "/runtime/api/v1/cluster/{}",
        "/runtime/api/v1/clusters/{}",
        "/runtime/api/v1/clusters/{}/",
        "/runtime/api/v1/cluster/{}/",
    ],
)
async def test_every_form_returns_the_cluster_with_all_its_nodes(
    admin: httpx.AsyncClient, engine: AsyncEngine, template: str
) -> None:
    [cluster_id, _] = await factories.insert(
        engine, [factories.cluster(node_count=6)] * 1 + [factories.cluster()]
    )
    response = await admin.get(template.format(cluster_id))
    assert response.status_code == 200
    payload = response.json()
    assert list(payload) == ["cluster"]
    cluster = payload["cluster"]
    assert cluster["id"] == cluster_id
    assert cluster["nodes_count"] == len(cluster["nodes"]) == 6
    assert [n["name"] for n in cluster["nodes"]] == [f"node-{i}" for i in range(6)]


@pytest.mark.parametrize("raw_id", ["999999", "0", "abc", "-1", "1.0", "99999999999999999999999"])
async def test_unknown_ids_are_404(admin: httpx.AsyncClient, raw_id: str) -> None:
    response = await admin.get(f"/runtime/api/v1/cluster/{raw_id}")
    assert response.status_code == 404
    assert list(response.json()) == ["error"]


async def test_a_removed_cluster_is_404(admin: httpx.AsyncClient, engine: AsyncEngine) -> None:
    [cluster_id] = await factories.insert(engine, [factories.cluster()])
    await factories.remove(engine, cluster_id)
    response = await admin.get(f"/runtime/api/v1/cluster/{cluster_id}")
    assert response.status_code == 404


async def test_post_is_405(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/runtime/api/v1/cluster/1")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}
