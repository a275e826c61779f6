"""An operation's collected selection sets and their plans, kept from one request to the next
(`graph.collections_kept`): requests that agree on the variables the directives read share them,
and every answer stays the stock executor's."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from graph import collections_kept, execution
from graph.collections_kept import KEPT, Collections, collections_for
from graph.schema import schema
from tests.graph.awkward_fleet import Seeded

GRAPHQL_SCHEMA = schema._schema

# `$n` and `$t` decide fields at three depths, through a fragment and on fields; `$ids` is read
# by an argument only.
DOCUMENT = """
query P($ids: [ID!], $n: Boolean!, $t: Boolean!) {
  clusters(limit: 100, filter: {ids: $ids}) {
    totalCount @skip(if: $t)
    clusters { name regions @include(if: $t) ...Nodes @include(if: $n) }
  }
}
fragment Nodes on Cluster { nodes { name status @skip(if: $t) } }
"""


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> list[Collections | None]:
    """The collections each execution of the product's executor was given."""
    given: list[Collections | None] = []
    real = collections_for

    def spy(*args: Any) -> Collections | None:
        given.append(real(*args))
        return given[-1]

    monkeypatch.setattr(execution, "collections_for", spy)
    return given


async def test_requests_share_what_they_collect_when_their_directives_agree(
    seeded: Seeded, shared: list[Collections | None]
) -> None:
    ids = [seeded.fleet.id("alpha"), seeded.fleet.id("many")]
    turns = [(True, True), (False, True), (True, False), (True, True), (False, False)] * 2
    sizes = []
    for turn, (n, t) in enumerate(turns):
        if turn == len(turns) // 2:  # what the first half kept
            sizes = [(len(c.sub_fields), len(c.plans)) for c in shared if c is not None]
        answer = await seeded.compare(DOCUMENT, {"ids": ids, "n": n, "t": t})
        assert not answer.errors
        page = answer.data["clusters"]
        assert ("totalCount" in page) is not t
        for cluster in page["clusters"]:
            assert ("regions" in cluster) is t
            assert ("nodes" in cluster) is n
            if n:
                assert all(("status" in node) is not t for node in cluster["nodes"])
    assert None not in shared
    by_turn = dict(zip(turns, shared, strict=True))
    # one kept collection per distinct (n, t), the same one each time it comes back
    assert len({id(c) for c in shared}) == len(set(turns)) == 4
    assert all(by_turn[turn] is kept for turn, kept in zip(turns, shared, strict=True))
    assert all(c is not None and c.plans and c.sub_fields and c.roots for c in shared)
    # the second half found everything kept: nothing more was collected or planned
    assert [(len(c.sub_fields), len(c.plans)) for c in shared[: len(sizes)] if c] == sizes


async def test_variables_read_only_by_arguments_do_not_divide_requests(
    seeded: Seeded, shared: list[Collections | None]
) -> None:
    for name in ("alpha", "many", "Bravo"):
        answer = await seeded.compare(
            DOCUMENT, {"ids": [seeded.fleet.id(name)], "n": True, "t": False}
        )
        assert [c["name"] for c in answer.data["clusters"]["clusters"]] == [name]
    assert len(shared) == 3
    assert shared[0] is shared[1] is shared[2]


def _operation(source: str) -> Any:
    return parse(source).definitions[0]


def test_a_subscription_collects_its_own() -> None:
    operation = _operation("subscription S { clusterChanged { name } }")
    assert collections_for(GRAPHQL_SCHEMA, operation, {}, {}, False) is None


def test_the_key_is_the_variables_of_directives_at_any_depth_and_in_fragments() -> None:
    document = parse(
        "query Q($a: Boolean!, $b: Boolean!, $c: Boolean!, $l: Int) {"
        "  clusters(limit: $l) { clusters { name @include(if: $a) ...F @skip(if: $b) } } }"
        " fragment F on Cluster { nodes { ... on Node @include(if: $c) { name } } }"
    )
    operation, fragment = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    assert isinstance(fragment, FragmentDefinitionNode)
    fragments = {"F": fragment}
    assert sorted(collections_kept._directed(operation, fragments) or ()) == [
        "a",
        "b",
        "c",
    ]  # no $l

    def kept(**values: Any) -> Collections | None:
        return collections_for(GRAPHQL_SCHEMA, operation, fragments, values, False)

    first = kept(a=True, b=False, c=True, l=1)
    assert first is not None
    assert kept(a=True, b=False, c=True, l=2) is first  # $l is an argument's, not a directive's
    assert kept(a=True, b=False, c=False) is not first
    assert kept(a=True, b=False) is not kept(a=True, b=False, c=None)  # absent is not null
    assert collections_for(GRAPHQL_SCHEMA, operation, fragments, {"a": True}, True) is not (
        collections_for(GRAPHQL_SCHEMA, operation, fragments, {"a": True}, False)
    )


def test_at_most_kept_collections_are_kept() -> None:
    operations = [_operation("{ clusters { totalCount } }") for _ in range(KEPT + 10)]
    made = [collections_for(GRAPHQL_SCHEMA, operation, {}, {}, False) for operation in operations]
    assert None not in made
    assert len(collections_kept._KEPT) <= KEPT
    assert len(collections_kept._DIRECTED) <= KEPT
    # the newest are still there; the oldest were dropped, and come back new
    assert collections_for(GRAPHQL_SCHEMA, operations[-1], {}, {}, False) is made[-1]
    assert collections_for(GRAPHQL_SCHEMA, operations[0], {}, {}, False) is not made[0]
