"""The leaf-plan executor answers exactly what Strawberry's own executor answers, only faster."""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from typing import Any

import pytest
import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.context import build_context
from graph.cursors import CursorCodec
from graph.execution import _SETTLING, PlannedExecutor, _gather, _settle
from graph.schema import build_schema, schema
from models.tokens import Permission, Principal
from tests import factories

ADMIN = Principal(token_id=1, name="t", permissions=frozenset({Permission.ADMIN}))
PAGE = """
query Page($first: Int) {
  __typename
  clusters(limit: 3) {
    totalCount
    pagination { nextKey limit }
    clusters {
      __typename id name alias: name monitoredAt controllerStatus regions nodesCount
      ...More
      nodes(first: $first) {
        id name status sensorLastUpdated sensorInstalled ... on Node { hostname }
      }
    }
  }
}
fragment More on Cluster { provider failedNodesCount name }
"""


# The same schema, run by Strawberry's own executor.
STOCK = build_schema(StrawberryGraphQLCoreExecutionContext)


async def _run(engine: AsyncEngine, executor: type, query: str, **variables: Any) -> Any:
    assert schema.execution_context_class is PlannedExecutor
    chosen = schema if executor is PlannedExecutor else STOCK
    context = build_context(engine, CursorCodec(b"test"), ADMIN, "test")
    return await chosen.execute(query, variable_values=variables, context_value=context)


async def test_a_page_is_the_same_as_strawberrys_own_answer(engine: AsyncEngine) -> None:
    await factories.insert(engine, [factories.cluster(node_count=n) for n in (0, 4, 7, 2)])
    for first in (None, 2):
        stock = await _run(engine, StrawberryGraphQLCoreExecutionContext, PAGE, first=first)
        planned = await _run(engine, PlannedExecutor, PAGE, first=first)
        assert stock.errors is None
        assert planned.errors is None
        assert planned.data == stock.data
        assert list(planned.data["clusters"]["clusters"][1]) == list(
            stock.data["clusters"]["clusters"][1]
        )


async def test_most_fields_skip_the_general_path(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await factories.insert(engine, [factories.cluster(node_count=10) for _ in range(3)])
    general: list[str] = []
    original = StrawberryGraphQLCoreExecutionContext.execute_field

    def counted(self: Any, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        general.append(f"{parent_type.name}.{details[0].node.name.value}")
        return original(self, parent_type, source, details, *rest)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_field", counted)
    result = await _run(engine, PlannedExecutor, PAGE)
    assert result.errors is None
    # none took it: `Query.clusters` (its permission checked and its filter input converted
    # as Strawberry would) and `Cluster.nodes` were called by their plans, everything else
    # completed by them
    assert general == []


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


@strawberry.type
class Odd:
    missing: str  # a non-null field whose source says None
    maybe: str | None
    colour: Colour  # a value the enum cannot represent
    count: int  # a value Int cannot represent


@strawberry.type
class OddQuery:
    @strawberry.field
    def odd(self) -> Odd:
        return Odd(missing=None, maybe=None, colour="blue", count=2**40)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["missing", "maybe", "colour", "count"])
async def test_broken_values_fail_exactly_as_they_do_without_plans(field: str) -> None:
    query = f"{{ odd {{ {field} }} }}"
    stock = await strawberry.Schema(OddQuery).execute(query)
    planned = await strawberry.Schema(OddQuery, execution_context_class=PlannedExecutor).execute(
        query
    )
    assert planned.data == stock.data
    assert [(e.message, e.path) for e in planned.errors or []] == [
        (e.message, e.path) for e in stock.errors or []
    ]


async def test_the_planner_says_which_fields_it_leaves_to_graphql_core(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given: a selection set never planned before (its response keys make its shape new)
    query = "{ odd { planned_here: maybe } __schema { queryType { name } } }"
    planned = strawberry.Schema(OddQuery, execution_context_class=PlannedExecutor)
    # when
    with caplog.at_level(logging.DEBUG, logger="clusterql.graph"):
        await planned.execute(query)
    # then: introspection goes to graphql-core; the plain resolver and the plain field do not
    lines = [r.getMessage() for r in caplog.records if "planned a selection set" in r.getMessage()]
    assert (
        "planned a selection set on OddQuery: 2 fields, graphql-core's own way for __schema"
        in lines
    )
    assert "planned a selection set on Odd: 1 fields, graphql-core's own way for none" in lines


async def test_work_tracked_once_answered_is_still_settled_in_the_background() -> None:
    """The helpers an executor has once it answered (`PlannedExecutor.build_response`) do
    what graphql-core's `gather_async_work` and `track_async_work` do without the executor:
    gathered values come in order; tracked awaitables are settled in the background, their
    errors observed there, and kept alive until then."""
    settled = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0)
        settled.set()
        raise RuntimeError("observed by the settling, raised nowhere")

    async def value(x: int) -> int:
        return x

    assert await _gather([value(1), value(2)]) == [1, 2]
    _settle(inspect.isawaitable, [work(), "not awaitable"])
    assert len(_SETTLING) == 1
    await asyncio.wait_for(settled.wait(), timeout=5)
    for _ in range(3):  # the gathering future's own callbacks
        await asyncio.sleep(0)
    assert not _SETTLING
