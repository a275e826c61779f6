"""The schema: types, extensions and the one logging hook for errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graph.context import Context
from graph.errors import ErrorCodes, log_unexpected
from graph.query import Query
from graph.scalars import DateTime


class SnapshotScope(SchemaExtension):
    """Closes the operation's read snapshot once the whole result has been resolved."""

    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            context = self.execution_context.context
            if isinstance(context, Context):
                await context.snapshot.close()


class ClusterqlSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Called before extensions mask anything: expected errors are the caller's business,
        # unexpected ones are logged here with their traceback and request id.
        context = execution_context.context if execution_context else None
        log_unexpected(errors, getattr(context, "request_id", None))


schema = ClusterqlSchema(
    query=Query,
    extensions=[
        SnapshotScope,
        ErrorCodes,
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ],
    config=StrawberryConfig(scalar_map={datetime: DateTime}),
)
