"""The typed per-request context, shared by `/graphql` and the REST shim."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.cursors import CursorCodec
from graph.fanout import Listening
from graph.loaders import Loaders
from graph.operation_limits import DEFAULT_LIMITS, OperationLimits
from graph.outcome import Outcome
from graph.wire import Wire
from models.limits import CONTROLLER_MAX_CLUSTERS, DEFAULT_STALE_AFTER
from models.snapshot import Snapshot
from models.tokens import Principal

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    controller_max_clusters: int = CONTROLLER_MAX_CLUSTERS  # live clusters per Controller token
    outcome: Outcome = field(default_factory=Outcome)  # what it did, for the request's watchers
    clock: Clock = field(default_factory=lambda: utc_now)  # reports' time; tests set their own
    stale_after: timedelta = DEFAULT_STALE_AFTER
    listening: Listening | None = None  # over a websocket: where subscriptions hear changes
    wire: Wire | None = None  # leaf values other than GraphQL's (the REST shim's: graph.wire)
    # The instant the answer reads as "now": staleness is judged once per operation, so
    # `Cluster.stale`, the `stale` filter and `fleetSummary` of one answer agree.
    now: datetime = field(default_factory=lambda: utc_now())

    @property
    def stale_before(self) -> datetime:
        """Clusters whose last report is older than this are stale."""
        return self.now - self.stale_after


Info = strawberry.Info[Context, None]


def build_context(
    engine: AsyncEngine,
    cursors: CursorCodec,
    principal: Principal,
    request_id: str,
    snapshot: Snapshot | None = None,
    limits: OperationLimits = DEFAULT_LIMITS,
    controller_max_clusters: int = CONTROLLER_MAX_CLUSTERS,
    outcome: Outcome | None = None,
    clock: Clock = utc_now,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
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
        controller_max_clusters=controller_max_clusters,
        outcome=Outcome() if outcome is None else outcome,
        clock=clock,
        stale_after=stale_after,
        now=clock(),
    )
