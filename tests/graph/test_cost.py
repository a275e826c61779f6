"""Cost limits (SPEC §6): each limit just below and just above its maximum, through aliases,
fragments, inline fragments and nested lists; what legitimate clients send stays allowed."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from graphql import (
    GraphQLError,
    GraphQLList,
    GraphQLObjectType,
    get_introspection_query,
    get_named_type,
    get_nullable_type,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.graphql_view import MAX_JSON_VALUES, json_values
from graph.admission import DocumentCache
from graph.cost import BOUNDED, PAGED, SIZED_BY_PARENT, introspection_sizes
from graph.operation_limits import DEFAULT_LIMITS, OperationLimits
from graph.schema import schema
from rest_shim.operations import GET_CLUSTER, LIST_CLUSTERS
from tests import factories

LIMITS = DEFAULT_LIMITS
README = Path(__file__).parents[2] / "README.md"


async def post(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


def refused(payload: dict[str, Any], limit: str) -> dict[str, Any]:
    """The refusal of `limit` in `payload`, checked for its shape."""
    assert payload.get("data") is None, payload
    errors = {e["extensions"].get("limit"): e for e in payload["errors"]}
    assert limit in errors, payload
    error = errors[limit]
    extensions = error["extensions"]
    assert extensions["code"] == "BAD_USER_INPUT"
    assert extensions["figure"] > extensions["maximum"]
    assert f"{extensions['maximum']:,}" in error["message"]
    assert f"({limit}" in error["message"]
    return error


def allowed(payload: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in payload, payload
    return payload["data"]


# --- tokens -----------------------------------------------------------------------------------


def with_tokens(count: int) -> str:
    """`{ __typename }` (3 tokens) padded with comments, which count as tokens too."""
    return "{ __typename }\n" + "#\n" * (count - 3)


async def test_a_document_of_as_many_tokens_as_the_limit_runs_one_more_is_refused(
    admin: httpx.AsyncClient,
) -> None:
    assert allowed(await post(admin, with_tokens(LIMITS.max_tokens))) == {"__typename": "Query"}
    error = refused(await post(admin, with_tokens(LIMITS.max_tokens + 1)), "tokens")
    assert "more than 2,000 tokens" in error["message"]
    fields = "{ " + "a: __typename " * LIMITS.max_tokens + "}"
    refused(await post(admin, fields), "tokens")


def test_a_document_is_parsed_only_up_to_the_limit() -> None:
    cache = DocumentCache()
    items = "{ clusters(filter: {ids: [" + "0," * 30_000 + "]}) { totalCount } }"
    started = time.perf_counter()
    with pytest.raises(GraphQLError, match="more than 2,000 tokens"):
        cache.prepared(items, LIMITS)
    assert time.perf_counter() - started < 1.0  # generous: it stops after 2,001 tokens
    assert len(cache) == 0


def padded(length: int) -> str:
    """`{ __typename }` padded with spaces (not tokens: the lexer skips them one by one)."""
    return "{ __typename }" + " " * (length - len("{ __typename }"))


async def test_a_document_as_long_as_the_limit_runs_one_character_more_is_refused(
    admin: httpx.AsyncClient,
) -> None:
    assert allowed(await post(admin, padded(LIMITS.max_characters))) == {"__typename": "Query"}
    error = refused(await post(admin, padded(LIMITS.max_characters + 1)), "characters")
    assert error["extensions"]["figure"] == LIMITS.max_characters + 1


async def test_four_million_list_items_are_refused_unread(admin: httpx.AsyncClient) -> None:
    in_document = "{ clusters(filter: {ids: [" + "0," * 4_000_000 + "]}) { totalCount } }"
    started = time.perf_counter()
    refused(await post(admin, in_document), "characters")
    in_variables = "query Q($ids: [ID!]) { clusters(filter: {ids: $ids}) { totalCount } }"
    response = await admin.post(
        "/graphql", json={"query": in_variables, "variables": {"ids": [0] * 4_000_000}}
    )
    assert time.perf_counter() - started < 5.0  # generous: was 60 s, is about 0.2 s
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "more than 100,000 JSON values" in error["message"]


async def test_a_body_of_100000_json_values_is_decoded(admin: httpx.AsyncClient) -> None:
    query = "query Q($ids: [ID!]) { clusters(filter: {ids: $ids}) { totalCount } }"
    ids = ["1"] * 99_996
    body = {"query": query, "variables": {"ids": ids}}  # with body, query, map, list
    payload = (await admin.post("/graphql", json=body)).json()
    assert payload["errors"][0]["message"] == "filter ids has 99996 values; at most 1000"
    ids.append("1")
    assert (await admin.post("/graphql", json=body)).status_code == 400


def _exact_values(body: bytes) -> int:
    stack, count = [orjson.loads(body)], 0
    while stack:
        value = stack.pop()
        count += 1
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


@pytest.mark.parametrize(
    "variables",
    [
        {"x": [0] * 99_996},  # 100,000 values with the body, its map and the list
        {"x": [0] * 99_997},
        {"x": [0] * 4_000_000},
        {"x": [[0, 1]] * 33_333},
        {"x": [[0, 1]] * 40_000, "y": [{}] * 30_000},
        {"x": ["a,b"] * 99_996},  # commas inside strings
        {"x": ["a,b"] * 99_997},
        {"x": [0] * 150_000, "q": 'an escaped " quote and \\ backslash'},
        {"x": "," * 4_000_000},  # one long string of commas
    ],
)
def test_the_json_value_count_refuses_exactly_the_bodies_past_the_limit(
    variables: dict[str, Any],
) -> None:
    body = orjson.dumps({"query": "q", "variables": variables})
    assert (json_values(body) > MAX_JSON_VALUES) == (_exact_values(body) > MAX_JSON_VALUES)


def test_parsed_documents_kept_are_bounded_in_weight() -> None:
    cache = DocumentCache(entries=1000, weight=20_000_000)
    for i in range(200):
        cache.prepared("{ " + f"a{i}: __typename " * 600 + "}", OperationLimits(max_tokens=2_000))
    assert cache.weight <= 20_000_000
    assert 0 < len(cache) < 200


# --- depth ------------------------------------------------------------------------------------


def of_types(levels: int) -> str:
    return "ofType { " * levels + "name" + " }" * levels


def deep(depth: int) -> str:
    """`__type { fields { type { ofType ... { name } } } }`: 3 levels, the ofTypes, the name."""
    return '{ __type(name: "Cluster") { fields { type { ' + of_types(depth - 4) + " } } } }"


def deep_through_fragments(depth: int) -> str:
    """The same depth, its levels split over an inline fragment and two fragments."""
    return (
        '{ __type(name: "Cluster") { fields { type { ...Deeper } } } }\n'
        "fragment Deeper on __Type { ... on __Type { ofType { ...Rest } } }\n"
        f"fragment Rest on __Type {{ {of_types(depth - 5)} }}"
    )


@pytest.mark.parametrize("spelling", [deep, deep_through_fragments])
async def test_depth_at_the_limit_runs_one_more_level_is_refused(
    admin: httpx.AsyncClient, spelling: Any
) -> None:
    allowed(await post(admin, spelling(LIMITS.max_depth)))
    error = refused(await post(admin, spelling(LIMITS.max_depth + 1)), "depth")
    assert error["extensions"]["figure"] == LIMITS.max_depth + 1


# --- aliases ----------------------------------------------------------------------------------


def aliases(count: int) -> str:
    return "{ clusters(limit: 1) { " + " ".join(f"a{i}: __typename" for i in range(count)) + " } }"


def aliases_through_fragments(count: int) -> str:
    """Half the aliases in a fragment spread twice, one in an inline fragment, the rest plain."""
    half = (count - 1) // 2
    rest = count - 1 - 2 * half
    inner = " ".join(f"f{i}: __typename" for i in range(half))
    plain = " ".join(f"p{i}: __typename" for i in range(rest))
    return (
        "{ clusters(limit: 1) { ...Many ... on ClusterPage { ...Many i: __typename } "
        + plain
        + " } }\n"
        + f"fragment Many on ClusterPage {{ {inner} }}"
    )


@pytest.mark.parametrize("spelling", [aliases, aliases_through_fragments])
async def test_aliases_at_the_limit_run_one_more_is_refused(
    admin: httpx.AsyncClient, spelling: Any
) -> None:
    allowed(await post(admin, spelling(LIMITS.max_aliases)))
    error = refused(await post(admin, spelling(LIMITS.max_aliases + 1)), "aliases")
    assert error["extensions"]["figure"] == LIMITS.max_aliases + 1


def aliased_pages(count: int) -> str:
    return (
        "{ " + " ".join(f"a{i}: clusters(limit: 100) {{ totalCount }}" for i in range(count)) + " }"
    )


async def test_aliased_pages_are_refused(admin: httpx.AsyncClient) -> None:
    refused(await post(admin, aliased_pages(1000)), "tokens")
    payload = await post(admin, aliased_pages(150))  # 10 tokens each
    for limit in ("rootFields", "aliases"):
        refused(payload, limit)


# --- root fields ------------------------------------------------------------------------------


def roots(count: int) -> str:
    return "{ " + " ".join(f"r{i}: __typename" for i in range(count)) + " }"


def roots_through_fragments(count: int) -> str:
    """Pairs in a fragment spread (count // 2) times, the odd one in an inline fragment."""
    spreads = " ".join("...Two" for _ in range(count // 2))
    odd = "... on Query { odd: __typename }" if count % 2 else ""
    return f"{{ {spreads} {odd} }}\nfragment Two on Query {{ one: __typename two: __typename }}"


@pytest.mark.parametrize("spelling", [roots, roots_through_fragments])
async def test_root_fields_at_the_limit_run_one_more_is_refused(
    admin: httpx.AsyncClient, spelling: Any
) -> None:
    allowed(await post(admin, spelling(LIMITS.max_root_fields)))
    error = refused(await post(admin, spelling(LIMITS.max_root_fields + 1)), "rootFields")
    assert error["extensions"]["figure"] == LIMITS.max_root_fields + 1


# --- nodes ------------------------------------------------------------------------------------
# REST's largest page (100 clusters with all their nodes) is 100 + 100 x 5,000 = 500,100 nodes;
# a connection of 100 clusters with `nodes(first: K)` adds 100 x (1 + K): K = 998 reaches the
# limit of 600,000 exactly.

NODES = """
query Budget($k: Int) {
  clusters(limit: 100) { clusters { nodes { id } } }
  clustersConnection(first: 100) { edges { node { nodes(first: $k) { id } } } }
}
"""
NODES_THROUGH_FRAGMENTS = """
query Budget($k: Int) {
  clusters(limit: 100) { ...Page }
  clustersConnection(first: 100) { edges { ... on ClusterEdge { node { ...Some } } } }
}
fragment Page on ClusterPage { clusters { ... on Cluster { nodes { id } } } }
fragment Some on Cluster { nodes(first: $k) { ...Id } }
fragment Id on Node { id }
"""


@pytest.mark.parametrize("query", [NODES, NODES_THROUGH_FRAGMENTS], ids=["plain", "fragments"])
async def test_nodes_at_the_limit_run_one_more_list_item_is_refused(
    admin: httpx.AsyncClient, engine: AsyncEngine, query: str
) -> None:
    await factories.insert(engine, [factories.cluster(node_count=2) for _ in range(3)])
    data = allowed(await post(admin, query, k=998))
    assert len(data["clusters"]["clusters"]) == 3
    error = refused(await post(admin, query, k=999), "nodes")
    assert error["extensions"]["figure"] == 600_100
    assert "600,100 nodes" in error["message"]


async def test_nodes_multiply_through_nested_lists(admin: httpx.AsyncClient) -> None:
    # __schema.types (29 types) x fields (14 at most) x args (7 at most) x ...: introspection
    # fans out; each level multiplies what is below it.
    sizes = introspection_sizes(schema._schema)
    nested = (
        "{ __schema { types { fields { args { type { fields { args { type { fields { name "
        "} } } } } } } } } }"
    )
    figure = refused(await post(admin, nested), "nodes")["extensions"]["figure"]
    types, fields, args = (
        sizes["__Schema", "types"],
        sizes["__Type", "fields"],
        sizes["__Field", "args"],
    )
    expected, items = 0, 1
    for size in (types, fields, args, fields, args, fields):
        items *= size
        expected += items
    assert figure == expected


async def test_five_thousand_aliases_of_the_schema_from_a_controller_are_refused(
    app: Any, controller_secret: str
) -> None:
    query = "{ " + " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(5000)) + " }"
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {controller_secret}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://clusterql.test", headers=headers
    ) as controller:
        started = time.perf_counter()
        payload = await post(controller, query)
        assert time.perf_counter() - started < 1.0  # generous: refused unread
        # within the characters limit: refused after 2,001 tokens
        shorter = "{" + " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(900))
        refused(await post(controller, shorter + "}"), "tokens")
    refused(payload, "characters")


def test_every_list_of_objects_in_the_schema_has_a_known_size() -> None:
    sizes = introspection_sizes(schema._schema)
    unknown = []
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType):
            continue
        for name, field in type_.fields.items():
            key = (type_.name, name)
            listed = isinstance(get_nullable_type(field.type), GraphQLList)
            holds_objects = isinstance(get_named_type(field.type), GraphQLObjectType)
            if listed and holds_objects and key not in {*PAGED, *SIZED_BY_PARENT, *BOUNDED, *sizes}:
                unknown.append(key)
            if any(arg in field.args for arg in ("limit", "first", "last")):
                assert key in PAGED, key
    assert unknown == []


# --- what legitimate clients send -------------------------------------------------------------


def readme_queries() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", text, re.DOTALL)
    curls = [q.replace('\\"', '"') for q in re.findall(r'"query": "(.*?)"}', text)]
    return blocks + curls


def test_the_readme_has_queries_to_check() -> None:
    assert len(readme_queries()) >= 3


@pytest.mark.parametrize("query", readme_queries())
async def test_every_query_of_the_readme_is_allowed(
    app: Any, admin_secret: str, query: str
) -> None:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_secret}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://clusterql.test", headers=headers
    ) as client:
        payload = await post(client, query)
    for error in payload.get("errors", []):
        assert "limit" not in error["extensions"], error


@pytest.mark.parametrize(
    "query",
    [
        get_introspection_query(),
        get_introspection_query(
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        ),
    ],
    ids=["introspection", "full-introspection"],
)
async def test_introspection_as_tools_send_it_is_allowed(
    admin: httpx.AsyncClient, query: str
) -> None:
    assert allowed(await post(admin, query))["__schema"]["queryType"]["name"] == "Query"


async def test_the_largest_rest_request_is_allowed_over_both_apis(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await factories.insert(engine, [factories.cluster(node_count=3) for _ in range(101)])
    rest = await admin.post("/runtime/api/v1/clusters", json={"limit": 100, "return_nodes": True})
    assert rest.status_code == 200, rest.text
    assert len(rest.json()["clusters"]) == 100
    variables = {"limit": 100, "withNodes": True}
    data = allowed(await post(admin, LIST_CLUSTERS, **variables))
    assert len(data["clusters"]["clusters"]) == 100
    one = await admin.get("/runtime/api/v1/cluster/1")
    assert one.status_code == 200, one.text
    allowed(await post(admin, GET_CLUSTER, id="1"))
