"""The cases the product's executor is most likely to get wrong, one document each: both executors
must answer them the same (tests.graph.executors.compare), and the answer must be the case it is
meant to be (each test checks the stock answer shows it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import get_introspection_query

from graph.schema import schema
from models.tokens import Permission, Principal
from tests.graph.awkward_fleet import LONG_REGIONS, Seeded, Twins, cleaned_up
from tests.graph.executors import PRODUCT_EXECUTOR, STOCK_EXECUTOR, Answer, answer, compare
from tests.graph.odd_schema import odd_schema

# As in tests/graph/test_executor_differential.py.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine '.*' was never awaited:RuntimeWarning")
ODD = odd_schema()
NOBODY = Principal(token_id=99, name="nobody", permissions=frozenset())

NULLS_IN_NON_NULL_FIELDS = """
{
  gadget(index: 1) { name shade }
  maybeGadgets { name }
  widgets { name matrix }
  fineGadget { name }
}
"""
NULL_UP_TO_THE_ROOT = "{ fineGadget { name } gadgets { name } }"
SPOILT_REGIONS = "query Spoilt($id: ID!) { cluster(id: $id) { id name regions } }"
PAGE_OF = """
query PageOf($ids: [ID!]) {
  clusters(filter: {ids: $ids}) { totalCount clusters { name regions } }
}
"""
ENUMS_THAT_DO_NOT_SERIALIZE = "{ gadget(index: 2) { name shade laterShade } }"
UNKNOWN_STATUSES = """
query Statuses($controller: ID!, $nodes: ID!) {
  controller: cluster(id: $controller) { name controllerStatus }
  nodes: cluster(id: $nodes) { name nodes { name status } }
}
"""
PAGE_WITH_NODES = """
query PageWithNodes($ids: [ID!]) {
  clusters(limit: 100, filter: {ids: $ids}) { clusters { name nodes { name status } } }
}
"""
# Two fields waiting for the loader per cluster: these take graphql-core's gathering.
PAGE_WITH_NODES_TWICE = """
query PageWithNodesTwice($ids: [ID!], $first: Int) {
  clusters(limit: 100, filter: {ids: $ids}) {
    clusters { name nodes { name status } few: nodes(first: $first) { id __typename } }
  }
}
"""
PAGE_WITH_NODES_AND_THEIR_CLUSTERS = """
query Nested($ids: [ID!]) {
  clusters(limit: 100, filter: {ids: $ids}) {
    clusters { name nodes { name status cluster { name } } }
  }
}
"""
ERRORS_INSIDE_LISTS = "{ maybeGadgets { name shade weight ratio on tags scores heat } }"
NODES_OF = "query NodesOf($id: ID!) { cluster(id: $id) { nodes { id name internalIp } } }"
COUNTS_OF = "query CountsOf($id: ID!) { cluster(id: $id) { runningNodesCount nodesCount } }"
INCLUDED_BY_VARIABLE = """
query Page($withNodes: Boolean!, $first: Int) {
  clusters(limit: 3) {
    clusters {
      name
      nodes(first: $first) @include(if: $withNodes) { name }
      nodesCount @skip(if: $withNodes)
      ... @include(if: $withNodes) { regions }
      ...Counts @skip(if: $withNodes)
    }
  }
}
fragment Counts on Cluster { failedNodesCount }
"""
THROUGH_TWO_FRAGMENTS = """
query Merged {
  clusters(limit: 2) {
    clusters {
      ...Identity
      ...Health
      ... on Cluster { name nodes(first: 2) { status } }
    }
  }
}
fragment Identity on Cluster { id name nodes(first: 2) { id } }
fragment Health on Cluster { name failedNodesCount nodes(first: 2) { name id } }
"""
TYPENAMES = """
{
  __typename
  t: __typename
  clusters(limit: 1) {
    __typename
    pagination { __typename nextKey }
    clusters { __typename nodes(first: 1) { __typename } }
  }
  clustersConnection(first: 1) {
    __typename
    edges { __typename node { __typename } }
    pageInfo { __typename }
  }
  cluster(id: "1") { __typename }
  __schema { __typename queryType { __typename name } }
}
"""
TYPENAMES_OF_ABSTRACT_TYPES = """
{ things { __typename ... on Widget { __typename name } } items { __typename } }
"""
INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
REPORT = """
mutation Report($input: ClusterReport!) {
  reportCluster(input: $input) {
    id name monitoredAt controllerLastUpdated controllerStatus regions nodesCount failedNodesCount
    nodes { id name status monitoredAt sensorLastUpdated internalIp }
    firstFailed: nodes(status: [FAILED], first: 1) { name }
  }
}
"""
REMOVE = "mutation Remove($id: ID!) { removeCluster(id: $id) }"
REPORT_THEN_REMOVE = """
mutation Both($input: ClusterReport!, $id: ID!) {
  removeCluster(id: $id)
  reportCluster(input: $input) { id name nodesCount }
  again: removeCluster(id: $id)
}
"""
EVERYTHING = """
{
  clusters(limit: 100, filter: {ids: ["1", "2", "3", "4", "5", "6", "16", "17"]}) {
    totalCount
    clusters { id name monitoredAt controllerLastUpdated regions nodesCount nodes { id name } }
  }
}
"""
FORBIDDEN_READS = """
query Forbidden {
  clusters { totalCount }
  again: clusters(limit: 1) { clusters { id } }
  ...More
}
fragment More on Query { cluster(id: "1") { name } clustersConnection { totalCount } }
"""
ONE_FORBIDDEN_READ = 'query One { __typename cluster(id: "1") { name } }'


def paths(answer: Answer) -> list[list[Any]]:
    return [error.get("path", []) for error in answer.errors]


def codes(answer: Answer) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in answer.errors]


def report(name: str, *nodes: tuple[str, str], **fields: Any) -> dict[str, Any]:
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


# --- nulls, unserializable values, errors inside lists


async def test_a_null_in_a_non_null_field_nulls_the_nearest_nullable_parent() -> None:
    # when
    answer = await compare(ODD, NULLS_IN_NON_NULL_FIELDS)
    # then: each failing value nulls the nearest nullable parent, and no more
    assert answer.data["gadget"] is None
    assert answer.data["maybeGadgets"][1] is None
    assert answer.data["widgets"][1] is None  # a null deep in [[Int!]!]!
    assert answer.data["fineGadget"] == {"name": "fine"}
    assert ["gadget", "name"] in paths(answer)
    assert ["widgets", 1, "matrix", 0, 1] in paths(answer)


async def test_a_null_under_non_null_fields_only_nulls_the_whole_answer() -> None:
    # when: a null in [Gadget!]!, under a non-null root field
    answer = await compare(ODD, NULL_UP_TO_THE_ROOT)
    # then
    assert answer.data is None
    assert paths(answer) == [["gadgets", 1, "name"]]


@pytest.mark.parametrize(
    ("cluster", "path"),
    [
        ("null-in-regions", ["cluster", "regions", 1]),
        ("null-regions", ["cluster", "regions"]),
        ("odd-regions", ["cluster", "regions", 3]),
        ("text-regions", ["cluster", "regions"]),
    ],
)
async def test_spoilt_regions_null_the_cluster(
    seeded: Seeded, cluster: str, path: list[Any]
) -> None:
    # given: a cluster whose regions hold what [String!]! refuses (written with SQL)
    # when
    answer = await seeded.compare(SPOILT_REGIONS, {"id": seeded.fleet.id(cluster)})
    # then: the cluster is null, with one error where the value is
    assert answer.data == {"cluster": None}
    assert paths(answer) == [path]


async def test_a_spoilt_cluster_on_a_page_nulls_the_whole_answer(seeded: Seeded) -> None:
    # given: a page of a good cluster and one with a null in its regions
    ids = [seeded.fleet.id("alpha"), seeded.fleet.id("null-in-regions")]
    # when
    answer = await seeded.compare(PAGE_OF, {"ids": ids})
    # then: ClusterPage.clusters, ClusterPage and Query.clusters are all non-null
    assert answer.data is None
    assert paths(answer) == [["clusters", "clusters", 1, "regions", 1]]


async def test_enum_values_that_do_not_serialize_fail_in_place() -> None:
    # when: a plain enum field and one with an async resolver hold a string of no member
    answer = await compare(ODD, ENUMS_THAT_DO_NOT_SERIALIZE)
    # then
    assert answer.data == {"gadget": None}
    assert answer.errors[0]["message"] == "Enum 'Shade' cannot represent value: 'blue'"


async def test_unknown_statuses_in_the_database_are_masked_errors(seeded: Seeded) -> None:
    # given: a controller status and a node status outside their enums (written with SQL)
    fleet = seeded.fleet
    variables = {"controller": fleet.id("bad-controller"), "nodes": fleet.id("bad-node")}
    # when
    answer = await seeded.compare(UNKNOWN_STATUSES, variables)
    # then: each fails where the enum serializes it (clusters and nodes keep their stored
    # texts), nulling its non-null field's cluster; both are masked
    assert answer.data == {"controller": None, "nodes": None}
    assert sorted(paths(answer)) == [
        ["controller", "controllerStatus"],
        ["nodes", "nodes", 1, "status"],
    ]
    assert codes(answer) == ["INTERNAL_SERVER_ERROR"] * 2


async def test_errors_inside_lists_null_their_items_one_by_one() -> None:
    # when
    answer = await compare(ODD, ERRORS_INSIDE_LISTS)
    # then: a bad item of [Gadget] is null; a bad item of [Int] is null inside its gadget
    items = answer.data["maybeGadgets"]
    assert [i for i, item in enumerate(items) if item is None] == [1, 2, 3, 4, 5, 6, 8, 9]
    assert items[7]["scores"] == [1, None]
    assert ["maybeGadgets", 6, "tags", 1] in paths(answer)
    assert ["maybeGadgets", 7, "scores", 1] in paths(answer)


async def test_values_only_sqlite_can_hold_fail_where_they_are(seeded: Seeded) -> None:
    # given: on SQLite, a blob node name, text and an integer past Int in integer columns
    if not seeded.fleet.sqlite:
        pytest.skip("PostgreSQL's typed columns cannot hold these values")
    variables = {"id": seeded.fleet.id("sqlite-oddities")}
    # when
    nodes = await seeded.compare(NODES_OF, variables)
    counts = await seeded.compare(COUNTS_OF, variables)
    # then
    assert nodes.data == counts.data == {"cluster": None}
    assert paths(nodes) == [["cluster", "nodes", 1, "name"]]
    assert paths(counts) == [["cluster", "runningNodesCount"]]


# --- a page's nodes, completed together (graph.execution._settle_objects)


SPOILT_NODES = ("bad-node", "sqlite-oddities")  # a status outside its enum; a blob name


def _live_ids(seeded: Seeded, *leaving_out: str) -> list[str]:
    return [seeded.fleet.id(n) for n in seeded.fleet.names if n not in ("removed", *leaving_out)]


async def test_the_nodes_of_a_page_answer_the_same(seeded: Seeded) -> None:
    # given: every live cluster but those with a node value its field cannot serialize
    ids = _live_ids(seeded, *SPOILT_NODES)
    # when: with one field of nodes per cluster, and with two
    once = await seeded.compare(PAGE_WITH_NODES, {"ids": ids})
    twice = await seeded.compare(PAGE_WITH_NODES_TWICE, {"ids": ids, "first": 2})
    # then: every cluster with all its nodes (and its first two by the alias)
    for page in (once, twice):
        clusters = seeded_page(page)
        assert len(clusters) == len(ids)
        assert len(next(c for c in clusters if c["name"] == "many")["nodes"]) == 60
        assert next(c for c in clusters if c["name"] == "empty")["nodes"] == []
    assert [len(c["few"]) for c in seeded_page(twice)] == [
        min(2, len(c["nodes"])) for c in seeded_page(twice)
    ]


async def test_a_bad_node_on_a_page_nulls_it_as_the_stock_executor_does(seeded: Seeded) -> None:
    # given: the page holds the cluster whose node status is outside its enum
    ids = _live_ids(seeded)
    # when
    answer = await seeded.compare(PAGE_WITH_NODES, {"ids": ids})
    # then: the status fails in place and its null reaches the page's nearest nullable field
    assert answer.data is None
    assert [path[-1] for path in paths(answer)] == ["status"]
    # and without the statuses (nor the blob name), the page holds that cluster
    without = _live_ids(seeded, "sqlite-oddities")
    page = await seeded.compare(PAGE_WITH_NODES.replace("status", "id"), {"ids": without})
    assert "bad-node" in [c["name"] for c in seeded_page(page)]


async def test_nodes_with_async_fields_below_them_answer_the_same(seeded: Seeded) -> None:
    # when: each node's cluster is read by a resolver of its own, below the page's nodes
    answer = await seeded.compare(PAGE_WITH_NODES_AND_THEIR_CLUSTERS, {"ids": _live_ids(seeded)})
    # then: the bad node's status still nulls the page, with the same errors
    assert answer.data is None
    assert [path[-1] for path in paths(answer)] == ["status"]
    # and without that cluster, every node names its own cluster
    answer = await seeded.compare(
        PAGE_WITH_NODES_AND_THEIR_CLUSTERS, {"ids": _live_ids(seeded, *SPOILT_NODES)}
    )
    for cluster in seeded_page(answer):
        assert {node["cluster"]["name"] for node in cluster["nodes"]} <= {cluster["name"]}


async def test_the_nodes_of_a_page_take_no_task_per_cluster(seeded: Seeded) -> None:
    # given: a task factory that counts the tasks made
    loop = asyncio.get_running_loop()
    made: list[object] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    ids = _live_ids(seeded, *SPOILT_NODES)
    loop.set_task_factory(counting)
    try:
        async with cleaned_up() as contexts:
            contexts.append(seeded.context())
            page = await answer(
                schema, PRODUCT_EXECUTOR, PAGE_WITH_NODES,
                variables={"ids": ids}, context=contexts[-1],
            )  # fmt: skip
    finally:
        loop.set_task_factory(None)
    # then: the page is whole, and its clusters' nodes were completed in one coroutine, not
    # in a task each (graphql-core's gathering)
    assert len(seeded_page(page)) == len(ids)
    assert len(made) < len(ids)


async def test_regions_beside_a_page_s_nodes_answer_the_same(seeded: Seeded) -> None:
    # given: the clusters whose regions hold what String! or [String!]! cannot take (a null
    # item, a number, an object, a JSON null, a JSON string), and those whose regions are fine
    spoilt = ("null-in-regions", "odd-regions", "null-regions", "text-regions")
    document = PAGE_WITH_NODES.replace("name nodes", "name regions nodes")
    # when
    fine = await seeded.compare(document, {"ids": _live_ids(seeded, *SPOILT_NODES, *spoilt)})
    every = await seeded.compare(document, {"ids": _live_ids(seeded, *SPOILT_NODES)})
    # then: fine regions are the stored lists; the first spoilt one (a null item) fails where
    # it is, and its null reaches the page's nearest nullable field
    regions = {c["name"]: c["regions"] for c in seeded_page(fine)}
    assert regions["many"] == LONG_REGIONS
    assert regions["empty"] == []
    assert every.data is None
    assert [(path[:2], path[3:]) for path in paths(every)] == [
        (["clusters", "clusters"], ["regions", 1])
    ]


def seeded_page(answer: Answer) -> list[dict[str, Any]]:
    assert answer.data is not None, answer.errors
    clusters: list[dict[str, Any]] = answer.data["clusters"]["clusters"]
    return clusters


# --- directives, fragments, __typename, introspection


async def test_include_and_skip_by_a_variable_answer_both_ways(seeded: Seeded) -> None:
    # when: the same document, with the condition true, false, and true again
    answers = [
        await seeded.compare(INCLUDED_BY_VARIABLE, {"withNodes": with_nodes, "first": 2})
        for with_nodes in (True, False, True)
    ]
    # then
    first = [list(a.data["clusters"]["clusters"][0]) for a in answers]
    assert first == [
        ["name", "nodes", "regions"],
        ["name", "nodesCount", "failedNodesCount"],
        ["name", "nodes", "regions"],
    ]


async def test_a_field_selected_through_two_fragments_is_merged(seeded: Seeded) -> None:
    # when
    answer = await seeded.compare(THROUGH_TWO_FRAGMENTS)
    # then: one key per field, in the order of first appearance, sub-selections merged
    cluster = answer.data["clusters"]["clusters"][0]
    assert list(cluster) == ["id", "name", "nodes", "failedNodesCount"]
    assert list(cluster["nodes"][0]) == ["id", "name", "status"]


async def test_typename_at_every_level(seeded: Seeded) -> None:
    # when
    answer = await seeded.compare(TYPENAMES)
    # then
    assert answer.errors == []
    data = answer.data
    assert (data["__typename"], data["t"]) == ("Query", "Query")
    assert data["clusters"]["clusters"][0]["nodes"] == [{"__typename": "Node"}]
    assert data["clustersConnection"]["edges"][0]["node"] == {"__typename": "Cluster"}
    assert data["__schema"] == {
        "__typename": "__Schema",
        "queryType": {"__typename": "__Type", "name": "Query"},
    }


async def test_typename_of_abstract_types() -> None:
    # when: an interface and a union (one of whose values is of no member type)
    answer = await compare(ODD, TYPENAMES_OF_ABSTRACT_TYPES)
    # then
    assert [t and t["__typename"] for t in answer.data["things"]] == [
        "Gadget",
        "Widget",
        "Gadget",
        "Widget",
    ]


async def test_the_standard_introspection_query(seeded: Seeded) -> None:
    # when
    product = await seeded.compare(INTROSPECTION)
    odd = await compare(ODD, INTROSPECTION)
    # then
    assert {t["name"] for t in product.data["__schema"]["types"]} >= {"Cluster", "DateTime"}
    assert {t["name"] for t in odd.data["__schema"]["types"]} >= {"Thing", "Item", "Kelvin"}


# --- mutations, each executor on its own twin database


async def test_reports_and_removals_answer_the_same(twins: Twins) -> None:
    # given: twin databases holding the awkward fleet
    fleet = twins.stock.fleet
    fresh = report("fresh", ("a", "MONITORED"), ("b", "FAILED"))
    # when: a report registers, the same report updates, another replaces a seeded cluster's
    # nodes, and a controller may not touch a cluster outside its binding
    registered = await twins.compare(REPORT, {"input": fresh})
    again = await twins.compare(REPORT, {"input": fresh})
    replaced = await twins.compare(REPORT, {"input": report("alpha", ("x", "DISABLED"))})
    foreign = await twins.compare(REPORT, {"input": report("alpha")}, principal=twins.controller)
    # then
    new = registered.data["reportCluster"]
    assert (new["name"], new["nodesCount"], new["firstFailed"]) == ("fresh", 2, [{"name": "b"}])
    assert again.data["reportCluster"]["id"] == new["id"]
    assert replaced.data["reportCluster"]["id"] == fleet.id("alpha")
    assert codes(foreign) == ["FORBIDDEN"]

    # when: refused reports
    duplicate = report("dup", ("a", "MONITORED"), ("a", "FAILED"))
    bad_time = report("late", ("a", "MONITORED"))
    bad_time["nodes"][0]["sensorLastUpdated"] = "yesterday"
    bad_ip = report("ip", ("a", "MONITORED"))
    bad_ip["nodes"][0]["internalIp"] = "999.1.1.1"
    refused = [
        await twins.compare(REPORT, {"input": state}) for state in (duplicate, bad_time, bad_ip)
    ]
    # then
    assert [(a.data, codes(a)) for a in refused] == [(None, ["BAD_USER_INPUT"])] * 3

    # when: removals, valid and refused, and both in one operation (run serially)
    removals = [
        await twins.compare(REMOVE, {"id": cluster_id})
        for cluster_id in (new["id"], new["id"], "abc", fleet.id("bad-controller"))
    ]
    forbidden = await twins.compare(REMOVE, {"id": "1"}, principal=twins.controller)
    both = await twins.compare(
        REPORT_THEN_REMOVE, {"input": report("fresh"), "id": fleet.id("empty")}
    )
    # then
    assert [a.data for a in removals] == [{"removeCluster": v} for v in (True, False, False, True)]
    assert (forbidden.data, codes(forbidden)) == (None, ["FORBIDDEN"])
    assert (both.data["removeCluster"], both.data["again"]) == (True, False)

    # and: both databases hold the same clusters, as each executor lists them
    listed = await twins.compare(EVERYTHING)
    assert listed.data["clusters"]["totalCount"] == 6


# --- authorization


async def test_a_token_without_admin_gets_the_same_forbidden_errors(seeded: Seeded) -> None:
    controller = Principal(token_id=2, name="c", permissions=frozenset({Permission.CONTROLLER}))
    # when
    reads = await seeded.compare(FORBIDDEN_READS, principal=controller)
    one = await seeded.compare(ONE_FORBIDDEN_READ, principal=controller)
    # then
    assert reads.data is None
    assert set(codes(reads)) == {"FORBIDDEN"}
    assert one.data == {"__typename": "Query", "cluster": None}
    assert codes(one) == ["FORBIDDEN"]


async def test_a_token_without_controller_may_not_report(twins: Twins) -> None:
    # when: a token with no permission reports
    answer = await twins.compare(REPORT, {"input": report("x")}, principal=NOBODY)
    # then
    assert answer.data is None
    assert answer.errors[0]["message"] == "this token lacks the Controller permission"
    assert codes(answer) == ["FORBIDDEN"]


# --- resolvers with permission checks and converted arguments, called by the plan

GUARDED = """
query Guarded($span: Span, $node: ID) {
  all: guardedGadgets { name guardedEcho(times: 2) }
  some: guardedGadgets(span: {low: 1, high: 5, names: ["heavy", "nan"]}, shade: DARK) { name }
  picked: guardedGadgets(indexes: [0, 2]) { name guardedEcho(span: {low: 3}) }
  refused: guardedGadgets(span: $span) { name }
  byNode: guardedGadgets(node: $node) { name }
  sloppy
  quietSecret
}
"""


async def test_permissions_and_converted_arguments_answer_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: graphql-core's general path counted, for the product's executor only
    general: list[str] = []
    original = STOCK_EXECUTOR.execute_field

    def counted(self: Any, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        if type(self) is not STOCK_EXECUTOR:
            general.append(f"{parent_type.name}.{details[0].node.name.value}")
        return original(self, parent_type, source, details, *rest)

    monkeypatch.setattr(STOCK_EXECUTOR, "execute_field", counted)
    # when: async resolvers behind sync and async checks, given an input object, an enum, a
    # list, a refused span and a global id that does not decode
    answer = await compare(ODD, GUARDED, variables={"span": {"low": -1}, "node": "not a global id"})
    # then: the answer is the one each case is meant to give
    data = answer.data
    assert data["all"][0] == {"name": "fine", "guardedEcho": "guardedEcho:fine:2:0"}
    assert data["all"][2] is None  # refused for any gadget but the fine one
    assert data["some"] == [{"name": "heavy"}, {"name": "nan"}]
    assert data["picked"] == [{"name": "fine", "guardedEcho": "guardedEcho:fine:1:3"}, None]
    assert (data["refused"], data["byNode"], data["sloppy"]) == (None, None, None)
    assert data["quietSecret"] == []
    messages = {tuple(e["path"]): e["message"] for e in answer.errors}
    assert messages[("refused",)] == "a span starts at 0 or later"
    assert messages[("all", 2, "guardedEcho")] == "only the fine gadget answers this"
    assert messages[("byNode",)] == 'Value cannot represent a GlobalID: "not a global id".'
    assert "_NotABoolean' returned a value of type 'int'" in messages[("sloppy",)]
    # and: the product's executor called those resolvers itself, none through graphql-core
    if PRODUCT_EXECUTOR is not STOCK_EXECUTOR:
        assert not {
            g for g in general if "uarded" in g or g in {"Query.sloppy", "Query.quietSecret"}
        }
