"""The schema, and the one place where an operation's snapshot is sealed or closed and its errors
get codes."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import datetime
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, GraphQLSchema, execute
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, StreamResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from graph.admission import OperationGate, admitted, limits_of
from graph.context import Context
from graph.errors import Code, log_unexpected, with_codes
from graph.executor import executor_class
from graph.mutation import Mutation
from graph.query import Query
from graph.scalars import DateTime
from graph.subscription import Subscription

log = logging.getLogger("clusterql.graph")
# graph.page_plan.answer_page: a page's result answered by its plan, or None
PageAnswerer = Callable[
    [GraphQLSchema, DocumentNode, "str | None", "dict[str, Any] | None", Any],
    Awaitable["GraphQLExecutionResult | None"],
]


class ClusterqlSchema(strawberry.Schema):
    @functools.cached_property
    def _only_the_gate(self) -> bool:
        """Whether `OperationGate` is all the pipeline would run around an operation (no other
        extension, no custom directive): only then may an admitted one skip it."""
        return list(self.extensions) == [OperationGate] and not self.directives

    @property
    def _page_answerer(self) -> PageAnswerer | None:
        """`graph.page_plan.answer_page` while operations run on the planned executor (whose
        code it shares): it then answers the pages it can, the executor everything else."""
        planned = executor_class()
        if planned is None or self.execution_context_class is not planned:
            return None
        return _page_plan()

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Run one operation; afterwards seal or close its read snapshot (`Snapshot.answered`)
        and code its errors.

        Done here rather than in an extension because some failures (syntax errors among
        them) leave Strawberry's execution by an exception that skips extension hooks. An
        operation still running after its time limit is cancelled and answered
        SERVICE_UNAVAILABLE (HTTP 503 with Retry-After in both APIs).

        An admitted query runs in this coroutine, under `asyncio.timeout`: it only reads, and
        a cancelled read lets go at once (a statement in SQLite's thread finishes there on its
        own, its connection closed later by the snapshot's owner). Anything else runs as a task
        that is abandoned at the limit (`_abandon`): a mutation's rollback may wait for a
        statement still running in SQLite's thread, and its answer must not. The task costs a
        page two turns of the event loop: measured in-process (interleaved A/B, REST page
        without nodes), running the query in place answered 29 us sooner back to back and
        87 us sooner with the caches cold.
        """
        timeout_s = limits_of(context_value).timeout_s
        # Subscriptions run over the websocket only (`stream`), never as one answer.
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        allowed.discard(OperationType.SUBSCRIPTION)
        ready = (
            admitted(self._schema, query, operation_name, variable_values, context_value)
            if self._only_the_gate
            else None
        )
        kind = OperationType(ready[1].operation.value) if ready is not None else None
        try:
            if ready is not None and kind in allowed:
                run = self._execute_admitted(
                    ready[0], variable_values, context_value, root_value, operation_name,
                    operation_extensions,
                )  # fmt: skip
                if kind is OperationType.QUERY:
                    result = await _in_place(run, timeout_s)
                else:
                    result = await _as_task(run, timeout_s)
            else:
                run = super().execute(
                    query,
                    variable_values,
                    context_value,
                    root_value,
                    operation_name,
                    allowed,
                    operation_extensions,
                )
                result = await _as_task(run, timeout_s)
        finally:
            if isinstance(context_value, Context):
                await context_value.snapshot.answered()
        timed_out = result is None
        if result is None:
            result = _timed_out(timeout_s, getattr(context_value, "request_id", None))
        if result.errors:
            result.errors = with_codes(result.errors, getattr(context_value, "request_id", None))
        if isinstance(context_value, Context):
            context_value.outcome.finished(result.errors, timed_out=timed_out)
        return result

    async def _execute_admitted(
        self,
        document: DocumentNode,
        variable_values: dict[str, Any] | None,
        context_value: Any,
        root_value: Any,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        """Run an operation the gate admits as it is (`admitted`) the way Strawberry's
        `execute` would with our one extension, whose parse and validate hooks would change
        nothing: graphql-core's `execute` with our executor, its errors handed to
        `process_errors`. Strawberry's pipeline around it is an execution context, an extension
        runner and four async context managers per operation: measured in-process, skipping it
        saved about 25 us of a REST page's 1.8 ms of Python. Operations not yet admitted take
        that pipeline, where the gate answers. A page `graph.page_plan` answers by its plan
        does not reach the executor."""
        answer_page = self._page_answerer
        result = None
        if answer_page is not None:
            result = await answer_page(
                self._schema, document, operation_name, variable_values, context_value
            )
        if result is None:
            try:
                executed = execute(
                    self._schema,
                    document,
                    root_value=root_value,
                    variable_values=variable_values,
                    operation_name=operation_name,
                    context_value=context_value,
                    is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                    operation_extensions=operation_extensions,
                    **execution_context_class_kwargs(self.execution_context_class),
                )
                result = await executed if isawaitable(executed) else executed
            except Exception as exc:  # as Strawberry's `execute` answers it
                coerced = (
                    exc
                    if isinstance(exc, GraphQLError)
                    else GraphQLError(str(exc), original_error=exc)
                )
                result = GraphQLExecutionResult(data=None, errors=[coerced])
        if result.errors:
            log_unexpected(result.errors, getattr(context_value, "request_id", None))
        return ExecutionResult(data=result.data, errors=result.errors, extensions={})

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        """Run a subscription (the websocket runs nothing else: queries and mutations are
        POSTed, where their time limit and snapshot apply), each result's errors coded."""
        results = await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            (OperationType.SUBSCRIPTION,),
        )
        return _coded(results, getattr(context_value, "request_id", None))

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Called before anything is masked: expected errors are the caller's business,
        # unexpected ones are logged here with their traceback and request id.
        context = execution_context.context if execution_context else None
        log_unexpected(errors, getattr(context, "request_id", None))


@functools.cache
def _page_plan() -> PageAnswerer:
    from graph.page_plan import answer_page  # only once the planned executor is trusted

    return answer_page


async def _coded(results: StreamResult, request_id: str | None) -> AsyncGenerator[Any, None]:
    try:
        async for result in results:
            if isinstance(result, ExecutionResult | PreExecutionError) and result.errors:
                result.errors = with_codes(result.errors, request_id)
            yield result
    finally:
        await results.aclose()


async def _in_place(
    run: Awaitable[ExecutionResult], timeout_s: float | None
) -> ExecutionResult | None:
    """`run`'s result, or None when it was cancelled at `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s) as limit:
            return await run
    except TimeoutError:
        if not limit.expired():
            raise
        return None


async def _as_task(
    run: Awaitable[ExecutionResult], timeout_s: float | None
) -> ExecutionResult | None:
    """`run`'s result, or None when it was still running at `timeout_s` (then it is cancelled
    and abandoned: the answer does not wait for it)."""
    operation = asyncio.ensure_future(run)
    try:
        await asyncio.wait((operation,), timeout=timeout_s)
    except asyncio.CancelledError:
        operation.cancel()
        raise
    if not operation.done():
        _abandon(operation)
        return None
    return operation.result()


_ABANDONED: set[asyncio.Future[Any]] = set()


def _abandon(operation: asyncio.Future[Any]) -> None:
    """Cancel `operation` without waiting for it: a statement waiting in a driver's thread
    (SQLite's write lock) only sees the cancellation once it returns, and the caller is answered
    now. Kept referenced until it has let its transaction go."""
    operation.cancel()
    _ABANDONED.add(operation)
    operation.add_done_callback(_ABANDONED.discard)
    operation.add_done_callback(lambda done: done.cancelled() or done.exception())


def _timed_out(timeout_s: float, request_id: str | None) -> ExecutionResult:
    log.warning(
        "operation cancelled after its time limit of %s s",
        timeout_s,
        extra={"request_id": request_id},
    )
    message = (
        f"the operation ran longer than its time limit ({timeout_s:g} s) and was cancelled: "
        "ask for less, or try again later"
    )
    error = GraphQLError(message, extensions={"code": Code.SERVICE_UNAVAILABLE})
    return ExecutionResult(data=None, errors=[error])


def build_schema(
    execution_context_class: type[Any] | None, *more: type[SchemaExtension]
) -> ClusterqlSchema:
    """The schema, run by `execution_context_class` (None: Strawberry's stock executor), with
    `more` extensions after the gate (tests)."""
    return ClusterqlSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[OperationGate, *more],
        config=StrawberryConfig(scalar_map={datetime: DateTime}),
        execution_context_class=execution_context_class,
    )


schema = build_schema(executor_class())
