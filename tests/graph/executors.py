"""Running one operation through a chosen executor, and comparing two answers exactly.

The product's executor is whatever class its schema was built with (`graph.executor` picks it
at import time), so these helpers never name it: `PRODUCT_EXECUTOR` is read from the schema once,
before any test swaps anything, and `executing_with` is the one place that swaps it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry
from graphql import OperationType, get_operation_ast, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.schema import schema as product_schema

Executor = type[Any]
PRODUCT_EXECUTOR: Executor = product_schema.execution_context_class
STOCK_EXECUTOR: Executor = StrawberryGraphQLCoreExecutionContext


@contextmanager
def executing_with(schema: strawberry.Schema, executor: Executor) -> Iterator[None]:
    """`schema` runs its operations with `executor` until the block ends."""
    saved = schema.execution_context_class
    schema.execution_context_class = executor
    try:
        yield
    finally:
        schema.execution_context_class = saved


@dataclass(frozen=True, slots=True)
class Answer:
    """What a client receives: data, and each error as it goes on the wire, in order."""

    data: Any
    errors: list[dict[str, Any]]
    extensions: Any
    raised: str | None = None  # what escaped `schema.execute` instead of an answer, if anything

    def shown(self) -> str:
        body = {"data": self.data, "errors": self.errors, "extensions": self.extensions}
        if self.raised is not None:
            body = {"raised": self.raised}
        return json.dumps(body, indent=1, ensure_ascii=False, default=_shown_leaf)


def _shown_leaf(value: object) -> str:
    return f"<not JSON: {value!r} of {type(value).__qualname__}>"


async def answer(
    schema: strawberry.Schema,
    executor: Executor,
    document: str,
    *,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    context: Any = None,
) -> Answer:
    with executing_with(schema, executor):
        return await _answered(schema, Request(document, variables, operation_name, context))


@dataclass(frozen=True, slots=True)
class Request:
    document: str
    variables: Mapping[str, Any] | None = None
    operation_name: str | None = None
    context: Any = None


async def answers_at_once(
    schema: strawberry.Schema, executor: Executor, requests: Sequence[Request]
) -> list[Answer]:
    """The answers to `requests` run concurrently, as simultaneous requests to one process are
    (and share whatever the executor keeps between operations)."""
    with executing_with(schema, executor):
        return list(await asyncio.gather(*(_answered(schema, r) for r in requests)))


async def _answered(schema: strawberry.Schema, request: Request) -> Answer:
    variables = request.variables
    try:
        result = await schema.execute(
            request.document,
            variable_values=dict(variables) if variables is not None else None,
            context_value=request.context,
            operation_name=request.operation_name,
        )
    except (Exception, asyncio.CancelledError) as exc:
        # An exception out of execute is what the client gets instead of an answer (a 500):
        # an outcome to compare, shown with the operation. A CancelledError that is not this
        # task's own cancellation escaped from work inside the operation.
        task = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
            raise
        return Answer(data=None, errors=[], extensions=None, raised=f"{type(exc).__name__}: {exc}")
    errors = [dict(error.formatted) for error in result.errors or []]
    return Answer(data=result.data, errors=errors, extensions=result.extensions)


# Whether two leaves that differ may both stand: by default they may not.
SameLeaf = Callable[[object, object], bool]


def _never(stock: object, product: object) -> bool:
    return False


def first_difference(
    stock: object, product: object, at: str = "", same_leaf: SameLeaf = _never
) -> str | None:
    """Where `product` first differs from `stock`: value, type (1 is not True, a `str`
    subclass is not a `str`), key order of objects, length of lists; None if nowhere."""
    if type(stock) is not type(product):
        return f"{at or '(top)'}: {type(stock).__name__} vs {type(product).__name__}"
    if isinstance(stock, dict):
        assert isinstance(product, dict)
        if list(stock) != list(product):
            return f"{at or '(top)'}: keys {list(stock)} vs {list(product)}"
        for key, value in stock.items():
            found = first_difference(value, product[key], f"{at}.{key}", same_leaf)
            if found:
                return found
        return None
    if isinstance(stock, list):
        assert isinstance(product, list)
        if len(stock) != len(product):
            return f"{at or '(top)'}: {len(stock)} items vs {len(product)}"
        for i, (a, b) in enumerate(zip(stock, product, strict=True)):
            found = first_difference(a, b, f"{at}[{i}]", same_leaf)
            if found:
                return found
        return None
    if stock != product and not same_leaf(stock, product):
        return f"{at or '(top)'}: {stock!r} vs {product!r}"
    return None


def difference(
    stock: Answer, product: Answer, same_leaf: SameLeaf = _never, *, roots_concurrent: bool = False
) -> str | None:
    """Where `product` first differs from `stock`, or None.

    With `roots_concurrent` (a query: graphql-core runs its root fields concurrently) the errors
    of different root fields may interleave differently, as long as each root field's errors
    are the same and in the same order: the stock executor's own interleaving depends on when
    the database answers (seen on PostgreSQL). And when a null reached the root (`data` is
    null in both), the root field that sent it there cancelled the others: whether another one
    had recorded its errors by then depends on how many turns of the loop each took, so a root
    field's errors may be missing from either answer, as long as some root field has errors in
    both (seen on SQLite, whose reads do not yield: a sibling's error recorded by the stock
    executor, and cancelled before it in the product).
    """
    for part in ("raised", "data", "extensions"):
        found = first_difference(getattr(stock, part), getattr(product, part), part, same_leaf)
        if found:
            return found
    in_order = first_difference(stock.errors, product.errors, "errors", same_leaf)
    if in_order is None or not roots_concurrent:
        return in_order
    stock_roots, product_roots = _by_root_field(stock.errors), _by_root_field(product.errors)
    both = stock_roots.keys() & product_roots.keys()
    nulled = stock.data is None and product.data is None
    if stock_roots.keys() != product_roots.keys() and not (nulled and both):
        return in_order
    for root in both:
        if first_difference(stock_roots[root], product_roots[root], "errors", same_leaf):
            return in_order
    return None


def _by_root_field(errors: list[dict[str, Any]]) -> dict[object, list[dict[str, Any]]]:
    grouped: dict[object, list[dict[str, Any]]] = {}
    for error in errors:
        grouped.setdefault((error.get("path") or [None])[0], []).append(error)
    return grouped


def is_query(document: str, operation_name: str | None) -> bool:
    operation = get_operation_ast(parse(document), operation_name)
    return operation is not None and operation.operation is OperationType.QUERY


# Runs the stock executor again on the same operation, for a query whose answer may vary.
Again = Callable[[], Awaitable[Answer]]
TRIES = 10


async def assert_same(
    stock: Answer,
    product: Answer,
    *,
    document: str,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    product_executor: Executor = PRODUCT_EXECUTOR,
    same_leaf: SameLeaf = _never,
    again: Again | None = None,
) -> None:
    """Fail, showing the operation and both answers, unless they are the same.

    For a query, `again` runs the stock executor again: when the database answers root fields
    in another order, which errors are recorded before a null reaches the root can change, so
    the product's answer also stands if the stock executor gives it in one of `TRIES` runs.
    """
    query = is_query(document, operation_name)
    found = difference(stock, product, same_leaf, roots_concurrent=query)
    if found is None:
        return
    if query and again is not None:
        for _ in range(TRIES):
            if difference(await again(), product, same_leaf, roots_concurrent=True) is None:
                return
    shown_variables = json.dumps(variables, ensure_ascii=False, default=repr)
    raise AssertionError(
        f"{product_executor.__module__}.{product_executor.__qualname__} answered differently "
        f"from Strawberry's stock executor\nfirst difference at {found}\n"
        f"--- operation (name {operation_name!r}, variables {shown_variables}):\n{document}\n"
        f"--- stock answer:\n{stock.shown()}\n--- product answer:\n{product.shown()}"
    )


async def compare(
    schema: strawberry.Schema,
    document: str,
    *,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    context: Callable[[], Any] = lambda: None,
    product: Executor = PRODUCT_EXECUTOR,
) -> Answer:
    """The stock executor's answer, after checking that `product` gives the same one (each run
    with a context of its own)."""

    async def stock_answer() -> Answer:
        return await answer(
            schema,
            STOCK_EXECUTOR,
            document,
            variables=variables,
            operation_name=operation_name,
            context=context(),
        )

    stock = await stock_answer()
    ours = await answer(
        schema,
        product,
        document,
        variables=variables,
        operation_name=operation_name,
        context=context(),
    )
    await assert_same(
        stock,
        ours,
        document=document,
        variables=variables,
        operation_name=operation_name,
        product_executor=product,
        again=stock_answer,
    )
    return stock


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@dataclass(frozen=True, slots=True)
class Window:
    """When one run took place: a timestamp it wrote can only lie in between."""

    start: datetime
    end: datetime

    def holds(self, value: object) -> bool:
        if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
            return False
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return self.start <= when <= self.end


def written_during(stock_runs: Sequence[Window], product_runs: Sequence[Window]) -> SameLeaf:
    """Two differing leaves may both stand only if they are timestamps that the same run (the
    i-th on each side) wrote: `controllerLastUpdated`, `monitoredAt` of what it registered."""

    def same(stock: object, product: object) -> bool:
        return any(
            a.holds(stock) and b.holds(product)
            for a, b in zip(stock_runs, product_runs, strict=True)
        )

    return same
