"""The typed per-request context, shared by `/graphql` and the REST shim."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.cursors import CursorCodec
from graph.fanout import Listening
from graph.loaders import Loaders
from graph.operation_limits import DEFAULT_LIMITS, OperationLimits
from models.snapshot import Snapshot
from models.tokens import Principal


@dataclass(slots=True)
class Context:
    """Who is asking, the one snapshot the answer reads, and the request's loaders."""

    principal: Principal
    engine: AsyncEngine  # for mutations, which write in their own transactions
    snapshot: Snapshot
    loaders: Loaders
    cursors: CursorCodec
    request_id: str
    limits: OperationLimits = DEFAULT_LIMITS  # what one operation may cost (graph.admission)
    listening: Listening | None = None  # over a websocket: where subscriptions hear changes


Info = strawberry.Info[Context, None]


def build_context(
    engine: AsyncEngine,
    cursors: CursorCodec,
    principal: Principal,
    request_id: str,
    snapshot: Snapshot | None = None,
    limits: OperationLimits = DEFAULT_LIMITS,
) -> Context:
    """A fresh context for one operation: new loaders, and the request's snapshot (the one its
    token was read in), or a new one."""
    snapshot = snapshot or Snapshot(engine)
    return Context(
        principal=principal,
        engine=engine,
        snapshot=snapshot,
        loaders=Loaders(snapshot),
        cursors=cursors,
        request_id=request_id,
        limits=limits,
    )
