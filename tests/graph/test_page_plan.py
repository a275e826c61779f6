"""A page answered by its plan (graph.page_plan) is the stock executor's answer, and whatever the
plan does not take goes to the executor, which answers it as the stock executor does."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql import ExecutionResult
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

import graph.schema
from graph import pagination
from graph.context import Context, build_context
from graph.cursors import CursorCodec
from graph.schema import schema
from models.engine import create_engine
from models.tokens import Permission, Principal
from rest_shim.operations import LIST_CLUSTERS, REST_WIRE, rest_page
from tests import factories
from tests.databases import migrated_database_url
from tests.graph.awkward_fleet import Seeded, cleaned_up
from tests.graph.executors import PRODUCT_EXECUTOR, Answer, answer, compare

ADMIN = Principal(token_id=1, name="admin", permissions=frozenset({Permission.ADMIN}))
CONTROLLER = Principal(token_id=2, name="ctl", permissions=frozenset({Permission.CONTROLLER}))
# The REST shim's variables for a first page of `limit` without nodes.
REST = {
    "limit": 2,
    "nextKey": None,
    "withNodes": False,
    "filter": None,
    "orderBy": "ID",
    "direction": "ASC",
}
# A page with what the plan must get right besides: aliases, `__typename` at every level, a
# field twice, fragments (one under a directive's variable), a leaf left out by `@skip`.
DRESSED = """
query Dressed($size: Int!, $after: String, $more: Boolean!, $less: Boolean!) {
  page: clusters(limit: $size, nextKey: $after, orderBy: NAME, direction: DESC) {
    __typename
    pagination { __typename next: nextKey limit }
    clusters {
      name id __typename ...More @include(if: $more) label: name
      controllerStatus @skip(if: $less) regions
    }
    count: totalCount
  }
}
fragment More on Cluster { provider nodesCount monitoredAt name }
"""
NO_COUNT = "{ clusters(limit: 3) { clusters { id name } pagination { limit } } }"
WITH_NODES = "{ clusters(limit: 3) { clusters { id nodes { name status } } } }"
FILTERED = '{ clusters(filter: {providers: ["aws"]}) { totalCount clusters { id } } }'
TWO_ROOTS = "{ clusters(limit: 1) { totalCount } cluster(id: 1) { id } }"
UNDER_A_DIRECTIVE = "query D($x: Boolean!) { clusters @include(if: $x) { totalCount } }"
A_RESOLVER_BELOW = "{ clusters { clusters { id nodes(first: 1) { id } } } }"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database of the test's own, without an app (whose background work on PostgreSQL
    `cleaned_up` would wait for)."""
    made = create_engine(await migrated_database_url(tmp_path))
    yield made
    await made.dispose()


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the page plan answered each operation run meanwhile (False: the executor did)."""
    planned = graph.schema._page_plan()
    seen: list[bool] = []

    async def watched(*args: Any) -> ExecutionResult | None:
        result = await planned(*args)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(graph.schema, "_page_plan", lambda: watched)
    return seen


def _context(engine: AsyncEngine, principal: Principal, contexts: list[Context]) -> Context:
    made = build_context(engine, CursorCodec(b"test"), principal, "test")
    contexts.append(made)
    return made


async def _compare(
    engine: AsyncEngine,
    document: str,
    variables: dict[str, Any] | None = None,
    principal: Principal = ADMIN,
) -> Answer:
    """The stock executor's answer, once the product's was found the same."""
    async with cleaned_up() as contexts:
        return await compare(
            schema,
            document,
            variables=variables,
            context=lambda: _context(engine, principal, contexts),
        )


async def _rest_answer(engine: AsyncEngine, variables: dict[str, Any]) -> Answer:
    """The product's answer to the REST shim's operation, with the shim's wire."""
    async with cleaned_up() as contexts:
        context = _context(engine, ADMIN, contexts)
        context.wire = REST_WIRE
        return await answer(
            schema, PRODUCT_EXECUTOR, LIST_CLUSTERS, variables=variables, context=context
        )


async def test_plain_pages_are_answered_by_the_plan_as_the_stock_executor_answers(
    engine: AsyncEngine, answered: list[bool]
) -> None:
    await factories.insert(
        engine, [factories.cluster(f"c{i}", node_count=i, regions=("b", "a")) for i in range(5)]
    )
    first = await _compare(engine, LIST_CLUSTERS, REST)
    page = first.data["clusters"]
    assert page["totalCount"] == 5
    assert [c["name"] for c in page["clusters"]] == ["c0", "c1"]
    assert page["pagination"] == {"limit": 2, "nextKey": page["clusters"][1]["id"]}
    # With the shim's wire (ids as numbers, statuses the vendor's), the plan's answer is what
    # the shim makes of the stock executor's: the same REST page.
    wired = await _rest_answer(engine, REST)
    assert wired.errors == []
    assert isinstance(wired.data["clusters"]["clusters"][0]["id"], int)
    assert orjson.dumps(rest_page(wired.data["clusters"])) == orjson.dumps(rest_page(page))
    last = await _compare(
        engine, LIST_CLUSTERS, {**REST, "limit": 3, "nextKey": page["pagination"]["nextKey"]}
    )
    assert [c["name"] for c in last.data["clusters"]["clusters"]] == ["c2", "c3", "c4"]
    assert last.data["clusters"]["pagination"]["nextKey"] is None
    for more, less in ((True, False), (False, True)):
        dressed = await _compare(
            engine, DRESSED, {"size": 2, "after": None, "more": more, "less": less}
        )
        assert [c["name"] for c in dressed.data["page"]["clusters"]] == ["c4", "c3"]
        assert dressed.data["page"]["count"] == 5
    await _compare(engine, NO_COUNT)
    await _compare(engine, LIST_CLUSTERS, {**REST, "orderBy": "NODES_COUNT", "direction": "DESC"})
    # each operation ran twice (stock, then product): the plan answered every product run
    assert answered == [True] * 7


@pytest.mark.parametrize(
    ("document", "variables", "principal"),
    [
        (LIST_CLUSTERS, {**REST, "withNodes": True}, ADMIN),
        (WITH_NODES, None, ADMIN),
        (A_RESOLVER_BELOW, None, ADMIN),
        (FILTERED, None, ADMIN),
        (TWO_ROOTS, None, ADMIN),
        (UNDER_A_DIRECTIVE, {"x": True}, ADMIN),
        (LIST_CLUSTERS, REST, CONTROLLER),  # no Admin: the field's permission error
        (LIST_CLUSTERS, {**REST, "limit": "two"}, ADMIN),  # does not coerce: its error
        (LIST_CLUSTERS, {**REST, "orderBy": "SIZE"}, ADMIN),  # no such value: its error
    ],
)
async def test_what_the_plan_does_not_take_goes_to_the_executor(
    engine: AsyncEngine,
    answered: list[bool],
    document: str,
    variables: dict[str, Any] | None,
    principal: Principal,
) -> None:
    await factories.insert(engine, [factories.cluster(f"c{i}") for i in range(3)])
    await _compare(engine, document, variables, principal)
    assert answered == [False]


async def test_pages_of_the_awkward_fleet_answer_as_the_stock_executor(seeded: Seeded) -> None:
    """Clusters whose stored values the rows' code does not take as they are (counts stored as
    text, on SQLite) are on some of these pages: the executor answers those, with its errors."""
    variables: dict[str, Any] = {**REST, "limit": 3}
    pages = 0
    while True:
        page = await seeded.compare(LIST_CLUSTERS, variables)
        pages += 1
        data = page.data and page.data["clusters"]
        if not data or data["pagination"]["nextKey"] is None:
            break
        variables["nextKey"] = data["pagination"]["nextKey"]
    assert pages >= 2
    for order in ("NAME", "CONTROLLER_LAST_UPDATED", "FAILED_NODES_COUNT"):
        await seeded.compare(LIST_CLUSTERS, {**REST, "limit": 100, "orderBy": order})


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({**REST, "nextKey": "nope"}, "BAD_USER_INPUT"),  # not a key
        ({**REST, "limit": 0}, "BAD_USER_INPUT"),  # out of range
        ({**REST, "nextKey": "999999"}, "NOT_FOUND"),  # no such cluster
    ],
)
async def test_a_page_read_that_fails_is_answered_with_the_executors_error(
    engine: AsyncEngine, answered: list[bool], variables: dict[str, Any], code: str
) -> None:
    await factories.insert(engine, [factories.cluster(f"c{i}") for i in range(3)])
    stock = await _compare(engine, LIST_CLUSTERS, variables)
    assert stock.data is None
    assert [e["extensions"]["code"] for e in stock.errors] == [code]
    assert answered == [True]


async def test_a_database_that_fails_the_page_read_is_answered_with_the_executors_error(
    engine: AsyncEngine, answered: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the database raises in the page's read (on PostgreSQL, a statement past its
    timeout aborts the snapshot's transaction: reading again would fail otherwise)."""

    async def unavailable(*_: Any, **__: Any) -> Any:
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(pagination, "clusters_page", unavailable)
    stock = await _compare(engine, LIST_CLUSTERS, REST)
    assert stock.data is None
    assert [e["extensions"]["code"] for e in stock.errors] == ["INTERNAL_SERVER_ERROR"]
    assert answered == [True]
