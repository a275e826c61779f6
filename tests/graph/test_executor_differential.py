"""The product's executor answers every operation exactly as Strawberry's stock executor does.

Random operations (tests/graph/operations.py) run on the awkward fleet
(tests/graph/awkward_fleet.py) and on test-only types (tests/graph/odd_schema.py) through both
executors, and the answers must be the same: data with the key order of every object and the
type of every leaf, and errors with message, path, locations and extensions, in order. Each
query runs with two assignments of its variables, one after the other, then all at once (twice
each), as concurrent requests would share the executor's plans. The product's executor is
whatever class `graph.schema.schema` was built with (tests/graph/executors.py): these tests hold
for any executor the product installs later.

Runs are bounded for CI, but random: each run draws new operations (Hypothesis keeps the ones that
failed in .hypothesis/ and tries them first next time). CLUSTERQL_DIFFERENTIAL_EXAMPLES multiplies
the number of operations, e.g. `CLUSTERQL_DIFFERENTIAL_EXAMPLES=20` for a long hunt.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

import hypothesis_graphql.nodes
import pytest
from graphql import ExecutionResult, GraphQLLeafType, GraphQLObjectType
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.schema import schema
from models.records import NodeStatus
from models.tokens import Permission, Principal
from tests.graph.awkward_fleet import ADMIN, Fleet, Seeded, Twins, cursors_of
from tests.graph.executors import PRODUCT_EXECUTOR, Executor, compare
from tests.graph.odd_schema import odd_schema, odd_values
from tests.graph.operations import ArgumentValues, Json, Operation, Run, ScalarNodes, operations

# When a null reaches the root, graphql-core drops resolver coroutines it had not started yet
# (either executor, seen on PostgreSQL): Python warns when they are collected. No answer
# depends on them; `explore` collects them before its test ends.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine '.*' was never awaited:RuntimeWarning")
T = TypeVar("T")
SCALE = float(os.environ.get("CLUSTERQL_DIFFERENTIAL_EXAMPLES", "1"))
CONTROLLER = Principal(token_id=2, name="ctl", permissions=frozenset({Permission.CONTROLLER}))
GRAPH = schema._schema  # graphql-core's schema, which hypothesis-graphql draws from
TIMESTAMPS = [
    "2024-06-01T10:00:00.000001Z",
    "2024-06-01T12:00:00+02:00",
    "0001-01-01T00:00:00Z",
    "yesterday",
    "2024-06-01T10:00:00",
]
_DATETIME_LITERALS: ScalarNodes = {
    "DateTime": st.sampled_from(TIMESTAMPS).map(hypothesis_graphql.nodes.String)
}


async def explore(
    strategy: st.SearchStrategy[T],
    check: Callable[[T], Coroutine[Any, Any, None]],
    *,
    examples: int,
    name: str,
    shrink: bool = True,
) -> None:
    """Hypothesis draws `examples` values and `check` must pass for each.

    Hypothesis drives a synchronous test, so it runs in a worker thread and hands each example to
    this event loop, where the engines of the fixtures live.
    """
    loop = asyncio.get_running_loop()

    def each(example: T) -> None:
        try:
            asyncio.run_coroutine_threadsafe(check(example), loop).result()
        finally:
            gc.collect(1)  # what this example dropped goes here (see below)

    each.__name__ = each.__qualname__ = name  # Hypothesis keeps failures by test name
    phases = list(Phase) if shrink else [Phase.generate]
    run = settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        suppress_health_check=list(HealthCheck),  # bounded by max_examples, not by health checks
        phases=phases,
        database=settings().database if shrink else None,
        print_blob=True,
    )(given(strategy)(each))
    # The coroutines an operation drops are collected where this module's filters apply: after
    # each example, and at the end. The collector's own runs could finalize them anywhere, and
    # inside a namedtuple's __new__ (a lambda whose builtins are empty) their warning cannot
    # import what it needs: pytest then reports an "unraisable exception" and fails the test.
    gc.disable()
    try:
        await asyncio.to_thread(run)
    finally:
        gc.enable()
        gc.collect()


# --- what is interesting to ask the fleet


def mostly(common: Any, rare: Any, one_in: int = 8) -> st.SearchStrategy[Json]:
    """A value of `common`, or (one time in `one_in`) of `rare`: most operations should get
    past their arguments, and some should not. Lists are sampled from."""

    def strategy(values: Any) -> st.SearchStrategy[Json]:
        return values if isinstance(values, st.SearchStrategy) else st.sampled_from(values)

    return st.integers(0, one_in - 1).flatmap(
        lambda i: strategy(rare) if i == one_in - 1 else strategy(common)
    )


def fleet_values(fleet: Fleet, cursors: list[str]) -> ArgumentValues:
    """Argument values worth asking: ids and cursors that exist, sizes at and past the bounds."""
    known_ids = [str(i) for i in fleet.ids.values()]
    ids = mostly(known_ids, ["0", "999999", "abc", "01", "-1", ""])
    bad_keys = ["0", "3", str(fleet.removed_id), "999999", "abc", "012"]
    sizes = mostly([1, 2, 3, 5, 10], [100, 0, -1, 101])
    table: dict[tuple[str, str, str], st.SearchStrategy[Json]] = {
        ("Query", "clusters", "limit"): sizes,
        ("Query", "clusters", "nextKey"): mostly([None, ""], cursors + bad_keys, 4),
        ("Query", "clustersConnection", "first"): mostly(st.none() | sizes, [0, 101]),
        ("Query", "clustersConnection", "last"): mostly([None], [1, 3, 0]),
        ("Query", "clustersConnection", "after"): mostly([None], ["", *cursors], 3),
        ("Query", "clustersConnection", "before"): mostly([None], cursors),
        ("Query", "cluster", "id"): ids,
        ("Cluster", "nodes", "first"): mostly([None, 1, 2, 5, 5000], [0, 5001, -3]),
        ("Cluster", "nodes", "status"): st.none()
        | st.lists(st.sampled_from([s.name for s in NodeStatus]), max_size=3),
        ("Mutation", "removeCluster", "id"): ids,
        ("Mutation", "reportCluster", "input"): _reports(fleet),
    }
    filters = _filters(known_ids)

    def values(parent: str, field_name: str, argument: str) -> st.SearchStrategy[Json] | None:
        if argument == "filter":
            return filters
        return table.get((parent, field_name, argument))

    return values


def _filters(known_ids: list[str]) -> st.SearchStrategy[Json]:
    def some(values: list[Any]) -> st.SearchStrategy[Json]:
        return mostly(st.none() | st.lists(st.sampled_from(values), min_size=1, max_size=3), [[]])

    conditions = st.fixed_dictionaries(
        {},
        optional={
            "ids": some([*known_ids, "abc"]),
            "name": mostly(st.none() | st.sampled_from(["a", "MANY", "集群", "-", "zzz"]), [""]),
            "providers": some(["aws", "gcp", "azure", "kubernetes", "", "nope"]),
            "controllerStatuses": some(["RUNNING", "STOPPED"]),
            "regions": some(["eu-west-1", "region-07", "ap-南-1", "nowhere"]),
            "hasUnhealthyNodes": st.none() | st.booleans(),
        },
    )
    return mostly([None], conditions, 3)


def _reports(fleet: Fleet) -> st.SearchStrategy[Json]:
    names = mostly([*fleet.names, "new-a", "new-b"], ["", " padded", "bell\x07", "x" * 254])
    node = st.fixed_dictionaries(
        {
            "name": mostly(["n-000", "n-001", "blank", "fresh"], [""]),
            "hostname": mostly(["h.internal", "hôte"], [""]),
            "status": st.sampled_from([s.name for s in NodeStatus]),
            "sensorInstalled": st.booleans(),
        },
        optional={
            "sensorVersion": st.none() | st.sampled_from(["", "5.4.1"]),
            "sensorLastUpdated": st.none() | mostly(TIMESTAMPS[:3], TIMESTAMPS[3:]),
            "region": st.sampled_from(["", "eu-west-1"]),
            "internalIp": mostly(["", "10.0.0.7", "fe80::1%eth0"], ["999.1.1.1"]),
        },
    )
    return st.fixed_dictionaries(
        {
            "name": names,
            "provider": mostly(["aws", "gcp"], ["", "p" * 65]),
            "regions": st.lists(mostly(["eu-west-1", "us-east-1", "ap-南-1"], [""]), max_size=3),
            "controllerVersion": st.sampled_from(["", "3.2.0"]),
            "controllerStatus": st.sampled_from(["RUNNING", "STOPPED"]),
            "nodes": st.lists(node, max_size=4),
        }
    )


# --- checks


async def check_query(
    seeded: Seeded, operation: Operation, principal: Principal, product: Executor
) -> None:
    """Every run of `operation` answers the same through the stock and the product executor,
    one after the other, then all at once."""
    stock = [
        await seeded.compare(
            operation.document,
            run.variables,
            operation_name=run.operation_name,
            principal=principal,
            product=product,
        )
        for run in operation.runs
    ]
    together = [(operation.document, run.variables, run.operation_name) for run in operation.runs]
    await seeded.compare_at_once(together, stock, principal=principal, product=product)


async def check_mutation(
    twins: Twins, operation: Operation, principal: Principal, product: Executor
) -> None:
    """As `check_query`, each executor on its own side of the twins."""
    for run in operation.runs:
        await twins.compare(
            operation.document,
            run.variables,
            operation_name=run.operation_name,
            principal=principal,
            product=product,
        )


def _principals(admin: Principal, controller: Principal) -> st.SearchStrategy[Principal]:
    return mostly([admin], [controller])


# --- the tests


async def test_random_queries_answer_as_the_stock_executor_does(seeded: Seeded) -> None:
    # given: the awkward fleet, and queries over every root field, with introspection
    queries = operations(
        GRAPH,
        values=fleet_values(seeded.fleet, await cursors_of(seeded)),
        custom_scalars=_DATETIME_LITERALS,
    )
    drawn = st.tuples(queries, _principals(ADMIN, CONTROLLER))

    async def check(example: tuple[Operation, Principal]) -> None:
        await check_query(seeded, *example, PRODUCT_EXECUTOR)

    # when / then: each answers the same through both executors
    await explore(drawn, check, examples=120, name="random_queries")


async def test_two_failing_root_fields_run_at_once_answer_as_the_stock_executor_does(
    seeded: Seeded,
) -> None:
    # given: an operation whose two root fields both fail, `clusters` on the newest cluster
    # (on SQLite, a count stored as text) and `nodes` (`first` with `last`). Which error
    # reaches the null root first depends on how requests run at once interleave: alone,
    # either executor answers `clusters`' error; two at once, one answer of each.
    document = """
    query Both {
      clusters(limit: 1, orderBy: ID, direction: DESC) { clusters { runningNodesCount } }
      nodes(first: 0, after: "", last: 0, before: "") { totalCount }
    }
    """
    operation = Operation(document, (Run("Both", {}),))

    # when / then: alone and at once, the product answers as the stock executor does
    await check_query(seeded, operation, ADMIN, PRODUCT_EXECUTOR)


async def test_random_mutations_answer_as_the_stock_executor_does(twins: Twins) -> None:
    # given: two databases seeded alike, and random reports and removals
    mutations = operations(
        GRAPH,
        mutation=True,
        values=fleet_values(twins.stock.fleet, await cursors_of(twins.stock)),
        custom_scalars=_DATETIME_LITERALS,
    )
    drawn = st.tuples(mutations, _principals(twins.admin, twins.controller))

    async def check(example: tuple[Operation, Principal]) -> None:
        await check_mutation(twins, *example, PRODUCT_EXECUTOR)

    # when / then: each answers the same, and leaves both databases alike
    await explore(drawn, check, examples=40, name="random_mutations")


ODD = odd_schema()
ODD_GRAPH = ODD._schema


async def check_odd(operation: Operation, product: Executor) -> None:
    for run in operation.runs:
        await compare(
            ODD,
            operation.document,
            variables=run.variables,
            operation_name=run.operation_name,
            product=product,
        )


def _odd_operations() -> st.SearchStrategy[Operation]:
    return operations(ODD_GRAPH, values=odd_values) | operations(
        ODD_GRAPH, mutation=True, values=odd_values
    )


async def test_random_operations_on_test_only_types_answer_the_same() -> None:
    # given: test-only types whose values are wrong in every way (tests/graph/odd_schema.py)
    async def check(operation: Operation) -> None:
        await check_odd(operation, PRODUCT_EXECUTOR)

    # when / then: the product's executor answers as the stock one on this schema too
    await explore(_odd_operations(), check, examples=100, name="random_odd_operations")


# --- the differential test notices a broken executor
# Each is Strawberry's own executor broken in one way. They are built on the stock executor,
# not the product's, so that they stay broken whichever methods the product's executor overrides.


class LeavesUncoerced(StrawberryGraphQLCoreExecutionContext):
    """Returns what a resolver gave for a scalar or enum, without coercing it."""

    @staticmethod
    def complete_leaf_value(return_type: GraphQLLeafType, result: Any) -> Any:
        return result


class ErrorsWithoutPaths(StrawberryGraphQLCoreExecutionContext):
    """Drops the path of every error."""

    def build_response(self, data: Any) -> Any:
        result = super().build_response(data)
        assert isinstance(result, ExecutionResult)
        for error in result.errors or []:
            error.path = None
        return result


class KeysSorted(StrawberryGraphQLCoreExecutionContext):
    """Answers the right values with every object's keys sorted."""

    def build_response(self, data: Any) -> Any:
        result = super().build_response(data)
        assert isinstance(result, ExecutionResult)
        result.data = _sorted(result.data)
        return result


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


class PlansIgnoringVariables(StrawberryGraphQLCoreExecutionContext):
    """Keeps the sub-selections it collected for a document across operations, as a plan cache
    keyed by the document alone would: `@include(if: $var)` then answers the first run's way."""

    # Keyed by the identity of the field nodes, which are kept alive with the value so that
    # no other document's nodes can take their ids.
    _kept: dict[tuple[GraphQLObjectType, tuple[int, ...]], tuple[list[Any], Any]] = {}  # noqa: RUF012

    def collect_subfields(self, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
        nodes = [d.node for d in field_details_list]
        key = (return_type, tuple(map(id, nodes)))
        if key not in self._kept:
            self._kept[key] = (nodes, super().collect_subfields(return_type, field_details_list))
        return self._kept[key][1]


class VariablesOfTheLatestOperation(StrawberryGraphQLCoreExecutionContext):
    """Collects sub-selections with the variables of whichever operation started last, as
    per-operation state kept where concurrent operations share it would."""

    latest: ClassVar[Any] = None

    def execute_operation(self, serially: bool | None = None) -> Any:
        VariablesOfTheLatestOperation.latest = self.variable_values
        return super().execute_operation(serially)

    def collect_subfields(self, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
        own, self.variable_values = self.variable_values, self.latest
        try:
            return super().collect_subfields(return_type, field_details_list)
        finally:
            self.variable_values = own


BROKEN = [
    LeavesUncoerced,
    ErrorsWithoutPaths,
    KeysSorted,
    PlansIgnoringVariables,
    VariablesOfTheLatestOperation,
]


@pytest.mark.parametrize("broken", BROKEN, ids=lambda b: b.__name__)
async def test_the_differential_test_notices_a_broken_executor(
    broken: Executor, seeded: Seeded
) -> None:
    # given: an executor broken in one way, and the random operations of the tests above
    queries = operations(
        GRAPH,
        values=fleet_values(seeded.fleet, await cursors_of(seeded)),
        custom_scalars=_DATETIME_LITERALS,
    )

    async def check(example: tuple[bool, Operation]) -> None:
        on_fleet, operation = example
        if on_fleet:
            await check_query(seeded, operation, ADMIN, broken)
        else:
            await check_odd(operation, broken)

    drawn = st.one_of(
        st.tuples(st.just(True), queries), st.tuples(st.just(False), _odd_operations())
    )
    # when / then: some operation answers differently, and the failure shows it. A breakage
    # that depends on timing (VariablesOfTheLatestOperation, with operations run at once) may
    # not fail again when Hypothesis runs the failing example a second time: then it reports a
    # FlakyFailure, which holds the first failure.
    with pytest.raises((AssertionError, FlakyFailure)) as failed:
        await explore(drawn, check, examples=300, name=f"broken_{broken.__name__}", shrink=False)
    found = failed.value
    errors = found.exceptions if isinstance(found, FlakyFailure) else (found,)
    shown = [str(e) for e in errors if isinstance(e, AssertionError)]
    assert any("answered differently" in e and broken.__qualname__ in e for e in shown), errors
