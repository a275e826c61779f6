"""The schema, and the one place where an operation's snapshot is closed and errors get codes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from graph.context import Context
from graph.errors import log_unexpected, with_codes
from graph.executor import executor_class
from graph.mutation import Mutation
from graph.query import Query
from graph.scalars import DateTime


class ClusterqlSchema(strawberry.Schema):
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
        """Run one operation; afterwards close its read snapshot and code its errors.

        Done here rather than in an extension because some failures (syntax errors among
        them) leave Strawberry's execution by an exception that skips extension hooks.
        """
        try:
            result = await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        finally:
            if isinstance(context_value, Context):
                await context_value.snapshot.close()
        if result.errors:
            result.errors = with_codes(result.errors, getattr(context_value, "request_id", None))
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Called before anything is masked: expected errors are the caller's business,
        # unexpected ones are logged here with their traceback and request id.
        context = execution_context.context if execution_context else None
        log_unexpected(errors, getattr(context, "request_id", None))


def build_schema(execution_context_class: type[Any] | None) -> ClusterqlSchema:
    """The schema, run by `execution_context_class` (None: Strawberry's stock executor)."""
    return ClusterqlSchema(
        query=Query,
        mutation=Mutation,
        extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
        config=StrawberryConfig(scalar_map={datetime: DateTime}),
        execution_context_class=execution_context_class,
    )


schema = build_schema(executor_class())
