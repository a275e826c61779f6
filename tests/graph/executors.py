"""Running one operation through a chosen executor, and comparing two answers exactly.

The product's executor is whatever class its schema was built with (`graph.executor` picks it
at import time), so these helpers never name it: `PRODUCT_EXECUTOR` is read from the schema once,
before any test swaps anything, and `executing_with` is the one place that swaps it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry
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

    def shown(self) -> str:
        body = {"data": self.data, "errors": self.errors, "extensions": self.extensions}
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
    result = await schema.execute(
        request.document,
        variable_values=dict(variables) if variables is not None else None,
        context_value=request.context,
        operation_name=request.operation_name,
    )
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


def difference(stock: Answer, product: Answer, same_leaf: SameLeaf = _never) -> str | None:
    for part in ("data", "errors", "extensions"):
        found = first_difference(
            getattr(stock, part), getattr(product, part), part, same_leaf=same_leaf
        )
        if found:
            return found
    return None


def assert_same(
    stock: Answer,
    product: Answer,
    *,
    document: str,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    product_executor: Executor = PRODUCT_EXECUTOR,
    same_leaf: SameLeaf = _never,
) -> None:
    """Fail, showing the operation and both answers, unless they are the same."""
    found = difference(stock, product, same_leaf)
    if found is None:
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
    stock, ours = [
        await answer(
            schema,
            executor,
            document,
            variables=variables,
            operation_name=operation_name,
            context=context(),
        )
        for executor in (STOCK_EXECUTOR, product)
    ]
    assert_same(
        stock,
        ours,
        document=document,
        variables=variables,
        operation_name=operation_name,
        product_executor=product,
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
