"""The GraphQL read API (SPEC §6): pages, nodes, codes, batching and masking."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from graphql import GraphQLNamedType, GraphQLObjectType
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.schema import schema
from models import listing
from models.records import NodeStatus
from tests import factories
from tests.documents import COUNT

PAGE_WITH_NODES = """
query Page($limit: Int!, $nextKey: String) {
  clusters(limit: $limit, nextKey: $nextKey) {
    totalCount
    pagination { limit nextKey }
    clusters { id name nodesCount nodes { id name status monitoredAt } }
  }
}
"""
NODES_FILTERED = """
query Filtered($status: [NodeStatus!], $first: Int) {
  clusters(limit: 100) { clusters { id nodes(status: $status, first: $first) { name status } } }
}
"""
ONE = "query One($id: ID!) { cluster(id: $id) { id name nodes { name } } }"


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


def code(payload: dict[str, Any]) -> str:
    return str(payload["errors"][0]["extensions"]["code"])


async def test_nodes_can_be_filtered_by_status_and_limited_per_cluster(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster(node_count=10) for _ in range(3)])
    failed = await gql(admin, NODES_FILTERED, status=["FAILED", "DISABLED"])
    for c in failed["data"]["clusters"]["clusters"]:
        assert [n["status"] for n in c["nodes"]] == ["FAILED", "DISABLED", "FAILED", "DISABLED"]
    firsts = await gql(admin, NODES_FILTERED, first=3)
    for c in firsts["data"]["clusters"]["clusters"]:
        assert [n["name"] for n in c["nodes"]] == ["node-0", "node-1", "node-2"]
    both = await gql(admin, NODES_FILTERED, status=["MONITORED"], first=1)
    for c in both["data"]["clusters"]["clusters"]:
        assert c["nodes"] == [{"name": "node-0", "status": "MONITORED"}]
    none = await gql(admin, NODES_FILTERED, status=[])
    assert all(c["nodes"] == [] for c in none["data"]["clusters"]["clusters"])


async def test_different_node_arguments_in_one_operation_each_get_their_answer(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster(node_count=5)])
    query = "{ clusters { clusters { all: nodes { name } two: nodes(first: 2) { name } } } }"
    [c] = (await gql(admin, query))["data"]["clusters"]["clusters"]
    assert len(c["all"]) == 5
    assert [n["name"] for n in c["two"]] == ["node-0", "node-1"]


CONNECTION_PAGE = """
query Connection($first: Int, $last: Int) {
  clustersConnection(first: $first, last: $last) { totalCount edges { node { id } } }
}
"""


async def test_a_connection_without_first_or_last_gives_ten(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster() for _ in range(12)])
    page = (await gql(admin, CONNECTION_PAGE))["data"]["clustersConnection"]
    assert len(page["edges"]) == 10
    assert page["totalCount"] == 12


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        (PAGE_WITH_NODES, {"limit": 0}, "limit must be between 1 and 100, got 0"),
        (PAGE_WITH_NODES, {"limit": 101}, "limit must be between 1 and 100, got 101"),
        (PAGE_WITH_NODES, {"limit": -1}, "limit must be between 1 and 100, got -1"),
        (CONNECTION_PAGE, {"first": 0}, "first must be between 1 and 100, got 0"),
        (CONNECTION_PAGE, {"first": -3}, "first must be between 1 and 100, got -3"),
        (CONNECTION_PAGE, {"first": 101}, "first must be between 1 and 100, got 101"),
        (CONNECTION_PAGE, {"last": 0}, "last must be between 1 and 100, got 0"),
        (CONNECTION_PAGE, {"last": 101}, "last must be between 1 and 100, got 101"),
        (PAGE_WITH_NODES, {"limit": 5, "nextKey": "x"}, "next key 'x' is not a key"),
        (NODES_FILTERED, {"first": 0}, "nodes(first:) must be between 1 and 5000, got 0"),
        (NODES_FILTERED, {"first": 5001}, "nodes(first:) must be between 1 and 5000"),
        (NODES_FILTERED, {"status": ["BROKEN"]}, "BROKEN"),
        (PAGE_WITH_NODES, {"limit": "ten"}, "Int cannot represent"),
        ("{ clusters { nope } }", {}, "Cannot query field 'nope'"),
        ("{ clusters { ", {}, "Syntax Error"),
    ],
)
async def test_bad_input_is_bad_user_input_with_a_helpful_message(
    admin: httpx.AsyncClient,
    engine: AsyncEngine,
    query: str,
    variables: dict[str, Any],
    expected: str,
) -> None:
    await factories.insert(engine, [factories.cluster()])
    payload = await gql(admin, query, **variables)
    assert code(payload) == "BAD_USER_INPUT"
    assert expected in payload["errors"][0]["message"]


async def test_a_next_key_never_assigned_is_not_found(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    [cluster_id] = await factories.insert(engine, [factories.cluster()])
    payload = await gql(admin, PAGE_WITH_NODES, limit=5, nextKey=str(cluster_id + 10))
    assert code(payload) == "NOT_FOUND"
    assert payload["data"] is None


async def test_cluster_by_id_is_null_when_unknown_removed_or_malformed(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    [live, removed] = await factories.insert(engine, [factories.cluster(), factories.cluster()])
    await factories.remove(engine, removed)
    assert (await gql(admin, ONE, id=str(live)))["data"]["cluster"]["id"] == str(live)
    for cluster_id in (str(removed), "424242", "abc", "-1"):
        assert await gql(admin, ONE, id=cluster_id) == {"data": {"cluster": None}}


async def test_unexpected_failures_are_masked_for_the_client_and_logged_with_the_request_id(
    admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(conn: object, where: object) -> int:
        raise RuntimeError("disk on fire at /var/lib/secret.db")

    monkeypatch.setattr(listing, "count_matching", broken)
    response = await admin.post(
        "/graphql", json={"query": COUNT}, headers={"X-Request-ID": "req-42"}
    )
    payload = response.json()
    assert response.headers["x-request-id"] == "req-42"
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "fire" not in error["message"]
    assert "/var" not in error["message"]
    assert "req-42" in error["message"]
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(getattr(r, "request_id", None) == "req-42" for r in logged)
    assert any("disk on fire" in str(r.exc_info) for r in logged)


async def test_the_rest_shim_answers_unexpected_failures_with_a_generic_500(
    admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> object:
        raise RuntimeError("SELECT secret FROM somewhere")

    monkeypatch.setattr(listing, "page", broken)
    monkeypatch.setattr(listing, "page_and_count", broken)  # the REST page asks for its count
    response = await admin.post("/runtime/api/v1/clusters", json={})
    assert response.status_code == 500
    assert "SELECT" not in response.json()["error"]
    assert response.headers["x-request-id"] in response.json()["error"]


def _described(named: GraphQLNamedType) -> list[str]:
    missing = [] if named.description else [named.name]
    if isinstance(named, GraphQLObjectType):
        for field_name, field in named.fields.items():
            if not field.description:
                missing.append(f"{named.name}.{field_name}")
            missing += [
                f"{named.name}.{field_name}({arg})"
                for arg, a in field.args.items()
                if not a.description
            ]
    return missing


def test_every_type_field_and_argument_has_a_description() -> None:
    graphql_schema = schema._schema
    missing = [
        m
        for name, named in graphql_schema.type_map.items()
        if not name.startswith("__") and name not in ("String", "Int", "Boolean", "ID", "Float")
        for m in _described(named)
    ]
    assert missing == []


def test_node_status_values_are_the_vendors() -> None:
    assert [s.value for s in NodeStatus] == [
        "monitored", "monitored_with_sensor", "failed", "installation_failed", "disabled",
    ]  # fmt: skip


async def test_datetime_says_it_is_rfc_3339_so_code_generators_can_type_it(
    admin: httpx.AsyncClient,
) -> None:
    payload = await gql(admin, '{ __type(name: "DateTime") { kind specifiedByURL } }')
    assert payload["data"]["__type"] == {
        "kind": "SCALAR",
        "specifiedByURL": "https://datatracker.ietf.org/doc/html/rfc3339",
    }
