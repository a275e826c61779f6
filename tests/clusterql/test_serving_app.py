"""What `clusterql serve` runs in each worker: `serving_app`, whose startup ends by freezing what
it made out of the garbage collector's walks and raising its young generation's threshold
(`create_app`'s `freeze_startup`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from clusterql.app import YOUNG_GENERATION, create_app, serving_app
from tests.databases import migrated_database_url


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # the test process keeps collecting everything, as before
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("thawed")
async def test_the_served_app_freezes_what_startup_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLUSTERQL_DATABASE_URL", await migrated_database_url(tmp_path))
    app = serving_app()
    assert gc.get_freeze_count() == 0, "nothing is frozen before the startup"
    async with LifespanManager(app):
        frozen = gc.get_freeze_count()
        # the modules, the schema and the engine: far more than a page's few thousand objects
        assert frozen > 50_000, frozen
        # a collection when more objects are alive than a page holds, not every 700
        assert gc.get_threshold()[0] == YOUNG_GENERATION


@pytest.mark.usefixtures("thawed")
async def test_an_app_built_by_hand_leaves_the_collector_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLUSTERQL_DATABASE_URL", await migrated_database_url(tmp_path))
    threshold = gc.get_threshold()
    async with LifespanManager(create_app()):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == threshold
