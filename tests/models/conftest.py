"""Fixtures of the model tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models import listing
from models.engine import create_engine
from tests.databases import NewEngine, fresh_database_url


@pytest.fixture
async def new_engine(tmp_path: Path) -> AsyncIterator[NewEngine]:
    """Opens an engine on a new, empty database (no tables) at each call; all are disposed after
    the test."""
    engines: list[AsyncEngine] = []

    async def open_engine() -> AsyncEngine:
        engines.append(create_engine(await fresh_database_url(tmp_path)))
        return engines[-1]

    yield open_engine
    for engine in engines:
        await engine.dispose()


async def not_by_driver(*_: object) -> None:
    """`models.driver_statements.fetch_statement` declining: the caller takes SQLAlchemy's way."""
    return


@pytest.fixture
def pages_through_sqlalchemy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages and counts take SQLAlchemy's way, whose events the plan tests read statements
    from: the driver runs the very SQL and arguments SQLAlchemy compiles for them
    (test_driver_statements.py)."""
    monkeypatch.setattr(listing, "fetch_statement", not_by_driver)
