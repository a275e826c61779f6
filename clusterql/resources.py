"""What the app's lifespan opens for its requests, typed (Starlette's `app.state` is not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from graph.cursors import CursorCodec
from graph.operation_limits import DEFAULT_LIMITS, OperationLimits


@dataclass(frozen=True, slots=True)
class Resources:
    """The process's engine (and so its pool), the codec of the cursors its pages hand out, and
    what one GraphQL operation may cost."""

    engine: AsyncEngine
    cursors: CursorCodec
    limits: OperationLimits = DEFAULT_LIMITS


def resources(app: Any) -> Resources:
    """The resources of `app` (a Starlette app whose lifespan has started)."""
    found = app.state.resources
    if not isinstance(found, Resources):
        raise RuntimeError("the app's lifespan has not started: no database yet")
    return found
