"""What the app's lifespan opens for its requests, typed (Starlette's `app.state` is not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from graph.cursors import CursorCodec


@dataclass(frozen=True, slots=True)
class Resources:
    """The process's engine (and so its pool), and the codec of the cursors its pages hand out."""

    engine: AsyncEngine
    cursors: CursorCodec


def resources(app: Any) -> Resources:
    """The resources of `app` (a Starlette app whose lifespan has started)."""
    found = app.state.resources
    if not isinstance(found, Resources):
        raise RuntimeError("the app's lifespan has not started: no database yet")
    return found
