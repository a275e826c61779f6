"""`/graphql`'s plain way (`GraphQLView._answer_plainly`) answers every request exactly as
Strawberry's own HTTP pipeline (`run`) does, and it is taken for what it is for: one operation as
a JSON object whose fields are of their types, with no streamed answer asked for."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.applications import Starlette

from clusterql.graphql_view import GraphQLView
from rest_shim.operations import LIST_CLUSTERS
from tests import factories
from tests.conftest import in_process

PAGE = "{ clusters(limit: 2) { totalCount clusters { id name } } }"
TWO = 'query A { clusters(limit: 1) { totalCount } } query B { cluster(id: "1") { name } }'
JSON = {"Content-Type": "application/json"}

# (what it is, extra headers, body, whether the plain way answers it)
CASES: list[tuple[str, dict[str, str], bytes, bool]] = [
    ("a page", JSON, orjson.dumps({"query": PAGE}), True),
    (
        "the REST operation, only the variables a client sets",
        JSON,
        orjson.dumps({"query": LIST_CLUSTERS, "variables": {"limit": 3, "withNodes": True}}),
        True,
    ),
    ("one of two operations", JSON, orjson.dumps({"query": TWO, "operationName": "B"}), True),
    ("no such operation", JSON, orjson.dumps({"query": TWO, "operationName": "C"}), True),
    ("two operations and no name", JSON, orjson.dumps({"query": TWO}), True),
    ("a syntax error", JSON, orjson.dumps({"query": "{ clusters("}), True),
    ("an unknown field", JSON, orjson.dumps({"query": "{ nope }"}), True),
    (
        "a variable of the wrong type",
        JSON,
        orjson.dumps({"query": LIST_CLUSTERS, "variables": {"limit": "x", "withNodes": 1}}),
        True,
    ),
    (
        "a mutation",
        JSON,
        orjson.dumps({"query": 'mutation { removeCluster(id: "999") }'}),
        True,
    ),
    (
        "a subscription over POST",
        JSON,
        orjson.dumps({"query": "subscription { clusterChanges { kind } }"}),
        True,
    ),
    ("extensions", JSON, orjson.dumps({"query": PAGE, "extensions": {}}), True),
    ("null variables", JSON, orjson.dumps({"query": PAGE, "variables": None}), True),
    (
        "a charset",
        {"Content-Type": "application/json; charset=utf-8"},
        b'{"query": "{ __typename }"}',
        True,
    ),
    ("no query", JSON, orjson.dumps({"variables": {}}), False),
    ("a null query", JSON, orjson.dumps({"query": None}), False),
    ("a query that is a number", JSON, orjson.dumps({"query": 5}), False),
    ("variables in a list", JSON, orjson.dumps({"query": PAGE, "variables": [1]}), False),
    (
        "an operation name that is a number",
        JSON,
        orjson.dumps({"query": PAGE, "operationName": 5}),
        False,
    ),
    ("extensions in a list", JSON, orjson.dumps({"query": PAGE, "extensions": []}), False),
    ("a field GraphQL over HTTP has not", JSON, orjson.dumps({"query": PAGE, "nope": 1}), False),
    ("a batch", JSON, orjson.dumps([{"query": PAGE}]), False),
    ("a JSON string", JSON, b'"{ __typename }"', False),
    (
        "a multipart answer asked for",
        {**JSON, "Accept": "multipart/mixed"},
        orjson.dumps({"query": PAGE}),
        True,  # the view serves no HTTP stream: plain JSON
    ),
    (
        "an event stream asked for",
        {**JSON, "Accept": "text/event-stream"},
        orjson.dumps({"query": PAGE}),
        True,  # the view serves no HTTP stream: plain JSON
    ),
    ("not JSON", {"Content-Type": "text/plain"}, orjson.dumps({"query": PAGE}), False),
    ("invalid JSON", JSON, b'{"query": "{ __typename }",}', True),  # refused by the strict body
    ("a duplicate key", JSON, b'{"query": "{ a }", "query": "{ b }"}', True),
]


def _seen(response: Any) -> tuple[int, str | None, str | None, Any]:
    """What a client reads of an answer (its request id aside, which differs on every request)."""
    return (
        response.status_code,
        response.headers.get("content-type"),
        response.headers.get("retry-after"),
        response.json() if response.content else None,
    )


async def _answers(app: Starlette, secret: str) -> list[tuple[int, str | None, str | None, Any]]:
    async with in_process(app, secret) as client:
        return [
            _seen(await client.post("/graphql", content=body, headers=headers))
            for _, headers, body, _ in CASES
        ]


async def test_the_plain_way_answers_as_strawberrys_pipeline_does(
    app: Starlette, admin_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a few clusters, and the requests Strawberry's pipeline answers counted
    engine = app.state.resources.engine
    await factories.insert(engine, [factories.cluster(node_count=2) for _ in range(4)])
    by_pipeline: list[bytes] = []
    pipeline = GraphQLView.run

    async def counted(self: GraphQLView, request: Any, *args: Any, **kwargs: Any) -> Any:
        by_pipeline.append(await request.body())
        return await pipeline(self, request, *args, **kwargs)

    monkeypatch.setattr(GraphQLView, "run", counted)
    # when: every request, with the plain way, then with Strawberry's pipeline alone
    plainly = await _answers(app, admin_secret)
    taken_by_pipeline = list(by_pipeline)

    async def never(self: GraphQLView, request: Any) -> None:
        return None

    monkeypatch.setattr(GraphQLView, "_answer_plainly", never)
    by_pipeline.clear()
    alone = await _answers(app, admin_secret)
    # then: the same answers, each one; alone, the pipeline answered every request, and with
    # the plain way only those the plain way is not for
    for case, a, b in zip(CASES, plainly, alone, strict=True):
        assert a == b, case[0]
    assert [answer[0] for answer in plainly[:3]] == [200, 200, 200]
    assert len(plainly[1][3]["data"]["clusters"]["clusters"]) == 3
    assert by_pipeline == [body for _, _, body, _ in CASES]
    assert taken_by_pipeline == [body for _, _, body, plain in CASES if not plain]
