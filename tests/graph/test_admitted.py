"""An operation the gate admits as it is runs without Strawberry's per-operation pipeline
(`ClusterqlSchema._execute_admitted`), and answers exactly as that pipeline does: data, errors
with their paths, locations and codes, extensions. Documents not admitted (not parsed yet,
invalid, refused by their cost, no such operation) still take the pipeline, which answers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from strawberry.extensions import SchemaExtension

import graph.schema
from graph.schema import build_schema, schema
from models.tokens import Permission, Principal
from rest_shim.operations import GET_CLUSTER, LIST_CLUSTERS
from tests.graph import test_executor_cases as cases
from tests.graph.awkward_fleet import Seeded, cleaned_up
from tests.graph.executors import PRODUCT_EXECUTOR, Answer, answer

pytestmark = pytest.mark.filterwarnings("ignore:coroutine '.*' was never awaited:RuntimeWarning")
NOBODY = Principal(token_id=99, name="nobody", permissions=frozenset())
REST_PAGE = {"limit": 3, "withNodes": True, "filter": None, "orderBy": "NAME", "direction": "DESC"}


def _admitted_cases(seeded: Seeded) -> list[tuple[str, Mapping[str, Any] | None, Principal]]:
    admin = Principal(token_id=1, name="admin", permissions=frozenset({Permission.ADMIN}))
    fleet = seeded.fleet
    return [
        (LIST_CLUSTERS, {**REST_PAGE, "nextKey": None}, admin),
        (LIST_CLUSTERS, {**REST_PAGE, "withNodes": False, "nextKey": "not a key"}, admin),
        (GET_CLUSTER, {"id": fleet.id("null-in-regions")}, admin),
        (GET_CLUSTER, {"id": "twelve"}, admin),  # an ID the resolver refuses
        (cases.INCLUDED_BY_VARIABLE, {"withNodes": True, "first": 1}, admin),
        (cases.INCLUDED_BY_VARIABLE, {"withNodes": False}, admin),
        (cases.INCLUDED_BY_VARIABLE, {"withNodes": "yes"}, admin),  # a variable that fails
        (cases.THROUGH_TWO_FRAGMENTS, None, admin),
        (cases.TYPENAMES, None, admin),
        (cases.EVERYTHING, None, admin),
        (cases.FORBIDDEN_READS, None, NOBODY),
        (cases.REMOVE, {"id": "999999"}, admin),
        (cases.INTROSPECTION, None, admin),
    ]


NOT_ADMITTED = [
    "{ clusters { totalCount ",  # a syntax error
    "{ clusters { noSuchField } }",  # invalid
    "{ clusters(limit: 100) { clusters { nodes { nodes } } } }",  # invalid too
    "subscription { clusterChanges { kind } }",  # not run as one answer
    # no operation named (Strawberry's pipeline runs the first one)
    "query A { __typename } query B { __typename }",
]


async def _answer(
    seeded: Seeded, document: str, variables: Mapping[str, Any] | None, principal: Principal
) -> Answer:
    async with cleaned_up() as contexts:
        contexts.append(seeded.context(principal))
        return await answer(
            schema, PRODUCT_EXECUTOR, document, variables=variables, context=contexts[-1]
        )


class _Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = 0
        real = graph.schema.ClusterqlSchema._execute_admitted

        async def spied(*args: Any, **kwargs: Any) -> Any:
            self.taken += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(graph.schema.ClusterqlSchema, "_execute_admitted", spied)


async def test_an_admitted_operation_answers_as_strawberrys_pipeline(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    for document, variables, principal in _admitted_cases(seeded):
        # given: the pipeline's answer (the gate parses and validates the document then)
        with monkeypatch.context() as patched:
            patched.setattr(graph.schema, "admitted", lambda *_: None)
            through_pipeline = await _answer(seeded, document, variables, principal)
        assert spy.taken == 0
        # when: the same operation again, now admitted as it is
        admitted = await _answer(seeded, document, variables, principal)
        # then
        assert spy.taken == 1, document
        spy.taken = 0
        assert admitted == through_pipeline, document


async def test_what_the_gate_does_not_admit_takes_the_pipeline(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    for document in NOT_ADMITTED:
        first = await _answer(seeded, document, None, NOBODY)
        again = await _answer(seeded, document, None, NOBODY)
        assert again == first
        assert first.errors or first.raised or document.startswith("query A"), document
    assert spy.taken == 0


TWO_PAGES = """
query Two($l: Int!) {
  a: clusters(limit: $l) { clusters { nodes { id } } }
  b: clusters(limit: $l) { clusters { nodes { id } } }
}
"""


async def test_an_operation_over_its_cost_limits_is_refused_each_time(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: two pages with nodes the gate admitted for pages of one cluster
    spy = _Spy(monkeypatch)
    await _answer(seeded, TWO_PAGES, {"l": 1}, NOBODY)
    await _answer(seeded, TWO_PAGES, {"l": 1}, NOBODY)
    assert spy.taken == 1
    # when: the same document with pages of 100 (up to 1,000,200 nodes)
    huge = await _answer(seeded, TWO_PAGES, {"l": 100}, NOBODY)
    # then: the pipeline answers, refusing it by its cost, before any resolver
    assert spy.taken == 1
    assert huge.data is None
    assert [e["extensions"]["code"] for e in huge.errors] == ["BAD_USER_INPUT"]
    assert "nodes" in huge.errors[0]["message"]


class _Watching(SchemaExtension):
    """An extension with hooks of its own: what the pipeline must keep running."""

    executed = 0

    def on_execute(self) -> Iterator[None]:
        _Watching.executed += 1
        yield


async def test_a_schema_with_another_extension_runs_every_operation_in_the_pipeline(
    seeded: Seeded,
) -> None:
    # given: the schema with one more extension than the gate
    watched = build_schema(PRODUCT_EXECUTOR, _Watching)
    document, variables = LIST_CLUSTERS, {**REST_PAGE, "nextKey": None}
    # when: the same page three times
    for _ in range(3):
        async with cleaned_up() as contexts:
            contexts.append(seeded.context())
            got = await answer(
                watched, PRODUCT_EXECUTOR, document, variables=variables, context=contexts[-1]
            )
        assert got.raised is None  # the awkward fleet answers with errors of its own
    # then: the extension saw every one of them
    assert _Watching.executed == 3
