"""How two answers are compared (tests.graph.executors): exactly, except for what the stock
executor itself does not keep the same from one run to the next."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graph.executors import Answer, assert_same, difference

QUERY = "query Q { a: cluster(id: 1) { name } b: cluster(id: 2) { name } }"
MUTATION = "mutation M { a: removeCluster(id: 1) b: removeCluster(id: 2) }"


def error(*path: Any, message: str = "boom") -> dict[str, Any]:
    return {"message": message, "locations": [{"line": 1, "column": 1}], "path": list(path)}


def answer(*errors: dict[str, Any], data: Any = None) -> Answer:
    return Answer(data=data, errors=list(errors), extensions={})


@pytest.mark.parametrize(
    ("stock", "product"),
    [
        (answer(data={"a": 1, "b": 2}), answer(data={"b": 2, "a": 1})),  # key order
        (answer(data={"a": 1}), answer(data={"a": True})),  # 1 is not True
        (answer(data={"a": "1"}), answer(data={"a": 1})),
        (answer(error("a", "x"), error("a", "y")), answer(error("a", "y"), error("a", "x"))),
        (answer(error("a")), answer(error("a", message="other"))),
        (answer(error("a")), answer({"message": "boom", "locations": [{"line": 1, "column": 1}]})),
        (answer(), Answer(data=None, errors=[], extensions=None, raised="CancelledError: ")),
    ],
)
def test_answers_differ_in_values_types_key_order_and_errors(
    stock: Answer, product: Answer
) -> None:
    assert difference(stock, product, roots_concurrent=True) is not None


def test_errors_of_different_root_fields_of_a_query_may_interleave_differently() -> None:
    # given: the same errors, in another order across root fields only
    stock = answer(error("a", "x"), error("b"), error("a", "y"))
    product = answer(error("b"), error("a", "x"), error("a", "y"))
    # then: the same for a query (its root fields run concurrently), not for a mutation
    assert difference(stock, product, roots_concurrent=True) is None
    assert difference(stock, product, roots_concurrent=False) is not None


async def test_a_query_answer_stands_if_the_stock_executor_gives_it_on_another_run() -> None:
    # given: a product answer the first stock run did not give, but a later one does
    first, later = answer(error("a"), data=None), answer(error("b"), data=None)
    runs = iter([first, later])

    async def again() -> Answer:
        return next(runs)

    # then: a query passes; a mutation is never run again, so it fails
    await assert_same(first, later, document=QUERY, again=again)
    with pytest.raises(AssertionError, match="answered differently"):
        await assert_same(first, later, document=MUTATION, again=again)


def test_once_a_null_reached_the_root_another_root_fields_errors_may_be_missing() -> None:
    # given: `b` sent a null to the root; `a`'s error was recorded before that in one answer only
    with_a = answer(error("a", "x"), error("b"), data=None)
    without_a = answer(error("b"), data=None)
    # then: either way round, for a query
    assert difference(with_a, without_a, roots_concurrent=True) is None
    assert difference(without_a, with_a, roots_concurrent=True) is None
    assert difference(with_a, without_a, roots_concurrent=False) is not None
    # but not while the root has data, nor without a root field whose errors both have
    assert difference(answer(error("a"), data={"a": None}), answer(data={"a": None}),
                      roots_concurrent=True) is not None  # fmt: skip
    assert difference(answer(error("a"), data=None), answer(error("b"), data=None),
                      roots_concurrent=True) is not None  # fmt: skip
    # and the root field both have must have the same errors
    assert difference(with_a, answer(error("b", message="other"), data=None),
                      roots_concurrent=True) is not None  # fmt: skip
