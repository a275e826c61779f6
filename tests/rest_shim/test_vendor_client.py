"""Our REST answers pass the response schemas of the vendor's own client (SPEC §12).

The vendor's MCP server validates answers with zod schemas; these pydantic models say the same in
strict mode (no coercion: a string is not an integer, null is not a string). zod objects ignore
keys they do not list, and so do these. The requests are sent the way that client sends them:
`POST /runtime/api/v1/clusters` with `{"limit": 50}`, and `GET /runtime/api/v1/clusters/{id}/`
with `Content-Type: application/json` and no body.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from models.records import NodeStatus
from tests import factories


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _ClusterFields(_Strict):
    monitored_at: str
    name: str
    controller_version: str
    controller_status: str
    controller_last_updated: str
    provider: str
    regions: list[str]
    nodes_count: int
    running_nodes_count: int
    failed_nodes_count: int
    failed_to_install_nodes_count: int
    disabled_nodes_count: int


class ListedCluster(_ClusterFields):
    id: str | int  # the list tool accepts either


class ClustersList(_Strict):
    clusters: list[ListedCluster]


class VendorNode(_Strict):
    id: int
    sensor_installed: bool
    architecture: str
    hostname: str
    internal_dns: str
    internal_ip: str
    monitored_at: str
    name: str
    region: str
    sensor_last_updated: str
    sensor_version: str
    status: str


class DetailedCluster(_ClusterFields):
    id: int  # the get tool requires an integer
    nodes: list[VendorNode]


class GetCluster(_Strict):
    cluster: DetailedCluster


AS_THE_CLIENT_SENDS = {"Content-Type": "application/json"}


async def _fleet(engine: AsyncEngine) -> list[int]:
    sensor = datetime(2024, 12, 31, 11, 32, 10, 367653, tzinfo=UTC)
    with_sensor = [
        factories.node(
            "with-sensor",
            NodeStatus.MONITORED_WITH_SENSOR,
            sensor_installed=True,
            sensor_version="5.4.1",
            sensor_last_updated=sensor,
        ),
        factories.node("no-sensor", NodeStatus.FAILED),  # no version, no update time
        factories.node("bare", NodeStatus.DISABLED, region="", architecture="", internal_ip=""),
    ]
    return await factories.insert(
        engine,
        [
            factories.cluster("no-nodes", node_count=0, regions=()),
            factories.cluster("mixed", node_states=with_sensor, regions=("us-east-1", "eu-west-1")),
            factories.cluster("no-regions", node_count=5, regions=()),
        ],
    )


async def test_the_list_answer_passes_the_list_tools_schema(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _fleet(engine)
    response = await admin.post(
        "/runtime/api/v1/clusters", json={"limit": 50}, headers=AS_THE_CLIENT_SENDS
    )
    assert response.status_code == 200
    listed = ClustersList.model_validate_json(response.content)
    assert [c.name for c in listed.clusters] == ["no-nodes", "mixed", "no-regions"]


async def test_the_list_answer_with_nodes_passes_the_get_tools_node_schema_too(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _fleet(engine)
    response = await admin.post("/runtime/api/v1/clusters", json={"return_nodes": True})
    page = response.json()
    for cluster in page["clusters"]:
        DetailedCluster.model_validate(cluster)


async def test_every_get_answer_passes_the_get_tools_schema(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await _fleet(engine)
    for cluster_id in ids:
        response = await admin.get(
            f"/runtime/api/v1/clusters/{cluster_id}/", headers=AS_THE_CLIENT_SENDS
        )
        assert response.status_code == 200, response.text
        got = GetCluster.model_validate_json(response.content).cluster
        assert got.id == cluster_id
        assert len(got.nodes) == got.nodes_count


async def test_an_unknown_sensor_time_is_an_empty_string_and_a_known_one_rfc3339(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = await _fleet(engine)
    response = await admin.get(f"/runtime/api/v1/cluster/{ids[1]}")
    nodes = {n["name"]: n for n in response.json()["cluster"]["nodes"]}
    assert nodes["with-sensor"]["sensor_last_updated"] == "2024-12-31T11:32:10.367653Z"
    assert nodes["no-sensor"]["sensor_last_updated"] == ""
    assert nodes["no-sensor"]["sensor_version"] == ""


def test_the_schemas_refuse_what_the_vendors_client_refuses() -> None:
    """The models are as strict as zod: a string id or a null time does not pass."""
    good = {
        "monitored_at": "2024-12-25T12:28:13.438479Z", "id": 2, "name": "z0runtime",
        "controller_version": "0.0.0", "controller_status": "running",
        "controller_last_updated": "2024-12-31T11:32:10.367653Z", "provider": "kubernetes",
        "regions": [], "nodes_count": 0, "running_nodes_count": 0, "failed_nodes_count": 0,
        "failed_to_install_nodes_count": 0, "disabled_nodes_count": 0, "nodes": [],
    }  # fmt: skip
    GetCluster.model_validate({"cluster": good})
    with pytest.raises(ValidationError):
        GetCluster.model_validate({"cluster": {**good, "id": "2"}})
    node = {
        "id": 1, "sensor_installed": False, "architecture": "", "hostname": "h",
        "internal_dns": "", "internal_ip": "", "monitored_at": "2024-12-25T12:28:13.438479Z",
        "name": "n", "region": "", "sensor_last_updated": None, "sensor_version": "",
        "status": "failed",
    }  # fmt: skip
    with pytest.raises(ValidationError):
        VendorNode.model_validate(node)
