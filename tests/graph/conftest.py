"""Fixtures of the executor comparisons: the awkward fleet, once or twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.graph.awkward_fleet import Seeded, Twins, seeded_fleet, twin_fleets


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[Seeded]:
    """The awkward fleet in a database of its own (tests/graph/awkward_fleet.py)."""
    done = await seeded_fleet(tmp_path)
    yield done
    await done.engine.dispose()


@pytest.fixture
async def twins(tmp_path: Path) -> AsyncIterator[Twins]:
    """The awkward fleet in two databases seeded alike, one per executor."""
    pair = await twin_fleets(tmp_path)
    yield pair
    for side in (pair.stock, pair.product):
        await side.engine.dispose()
