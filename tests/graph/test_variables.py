"""Variable values coerced by a plan made once per operation (`graph.variables`): the same
values, sources and errors as graphql-core's `get_variable_values`, the short way taken for the
REST operation's variables (all sent, or only those a client sets), and graphql-core's way kept
for the stock executor."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution import values as graphql_values

from graph import variables
from graph.schema import schema
from graph.variables import PLANNING, planned_variable_values
from rest_shim.operations import LIST_CLUSTERS
from tests.graph.awkward_fleet import Seeded
from tests.graph.executors import PRODUCT_EXECUTOR, STOCK_EXECUTOR

GRAPHQL_SCHEMA = schema._schema
DOCUMENT = """
query V(
  $limit: Int!, $key: String, $nodes: Boolean!, $filter: ClusterFilter, $order: ClusterOrderField!,
  $ids: [ID!], $id: ID, $maybe: Int
) { __typename }
"""
WITH_DEFAULT = "query D($limit: Int! = 5, $order: ClusterOrderField! = ID) { __typename }"
NULLABLE_DEFAULTS = (
    'query E($limit: Int = 5, $key: String = null, $filter: ClusterFilter = {name: "a"},'
    ' $ids: [ID!] = ["1"]) { __typename }'
)
BAD_DEFAULT = 'query B($limit: Int! = "five") { __typename }'  # what validation refuses
NOT_AN_INPUT = "query N($x: Cluster) { __typename }"
FINE = {"limit": 7, "key": "10", "nodes": False, "filter": None, "order": "NAME", "id": "3"}
CASES: list[tuple[str, dict[str, Any]]] = [
    (DOCUMENT, FINE),
    (DOCUMENT, {**FINE, "maybe": None, "key": None, "ids": None}),
    (DOCUMENT, {**FINE, "id": 12}),  # an ID given as a number
    (DOCUMENT, {**FINE, "ids": ["1", 2]}),  # a list
    (DOCUMENT, {**FINE, "filter": {"name": "a", "ids": ["1"]}}),  # an input object
    (DOCUMENT, {**FINE, "filter": {"nope": 1}}),  # a field the input has not
    (DOCUMENT, {**FINE, "limit": 2**31}),  # beyond Int
    (DOCUMENT, {**FINE, "limit": 3.0}),  # an integral float
    (DOCUMENT, {**FINE, "limit": True}),  # a boolean for an Int
    (DOCUMENT, {**FINE, "nodes": "yes"}),
    (DOCUMENT, {**FINE, "order": "SIDEWAYS"}),  # no value of the enum
    (DOCUMENT, {**FINE, "limit": None}),  # null for a non-null variable
    (DOCUMENT, {k: v for k, v in FINE.items() if k != "limit"}),  # missing and non-null
    (DOCUMENT, {k: v for k, v in FINE.items() if k != "key"}),  # missing and nullable
    (DOCUMENT, {**FINE, "unknown": 1}),  # a value no variable is declared for
    (WITH_DEFAULT, {}),
    (WITH_DEFAULT, {"limit": 9}),
    (WITH_DEFAULT, {"limit": 9, "order": "ID"}),
    (NULLABLE_DEFAULTS, {}),  # defaults of a scalar, a null, an input object and a list
    (NULLABLE_DEFAULTS, {"filter": None, "ids": None}),
    (BAD_DEFAULT, {}),
    (NOT_AN_INPUT, {"x": 1}),
]


def _definitions(document: str) -> Any:
    operation = parse(document).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation.variable_definitions


def _shown(result: Any) -> Any:
    """Errors as a client sees them; values and sources with each signature's type as written
    (graphql-core makes a new wrapper type for each signature it resolves)."""
    if isinstance(result, list):
        return [error.formatted for error in result]
    sources = {
        name: (s.signature.name, str(s.signature.type), s.signature.default, s.value)
        for name, s in result.sources.items()
    }
    return sources, result.coerced


@pytest.mark.parametrize(("document", "inputs"), CASES)
def test_the_plan_coerces_as_graphql_core_does(document: str, inputs: dict[str, Any]) -> None:
    definitions = _definitions(document)
    expected = graphql_values.get_variable_values(GRAPHQL_SCHEMA, definitions, dict(inputs))
    token = PLANNING.set(True)
    try:
        # twice: the first request makes the plan, the second one uses it
        first = planned_variable_values(GRAPHQL_SCHEMA, definitions, dict(inputs))
        second = planned_variable_values(GRAPHQL_SCHEMA, definitions, dict(inputs))
    finally:
        PLANNING.reset(token)
    assert _shown(first) == _shown(second) == _shown(expected)


async def test_the_rest_operation_takes_the_short_way_and_the_stock_executor_does_not(
    monkeypatch: pytest.MonkeyPatch, seeded: Seeded
) -> None:
    # given: graphql-core's own coercion counted
    coerced_by_graphql_core: list[str] = []
    real = graphql_values.get_variable_values

    def counted(*args: Any, **kwargs: Any) -> Any:
        coerced_by_graphql_core.append("called")
        return real(*args, **kwargs)

    monkeypatch.setattr(variables, "get_variable_values", counted)
    # what a /graphql client sends: only the variables it sets, the others left to their
    # defaults or out
    graphql_variables = {"limit": 3, "withNodes": False}
    rest_variables = {
        "limit": 3,
        "nextKey": None,
        "withNodes": False,
        "filter": None,
        "orderBy": "ID",
        "direction": "ASC",
    }
    # when: the REST page's operation, through the stock executor and the product's
    answers = [await seeded.compare(LIST_CLUSTERS, v) for v in (rest_variables, graphql_variables)]
    # then: both answer the page alike; graphql-core coerced the stock executor's variables
    # only, the product's executor took the short way
    for answer in answers:
        assert answer.errors == []
        assert len(answer.data["clusters"]["clusters"]) == 3
    assert answers[0].data == answers[1].data
    assert len(coerced_by_graphql_core) == (2 if PRODUCT_EXECUTOR is not STOCK_EXECUTOR else 4)
