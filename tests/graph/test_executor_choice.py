"""Our executor runs only on the Strawberry and graphql-core it was tested with; on any other,
the stock executor answers (with one warning) instead of every operation failing."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph import executor
from graph.execution import PlannedExecutor
from graph.schema import schema

_PROBE = """
import asyncio, sys
from graph.schema import schema
result = asyncio.run(schema.execute("{ __typename }"))
print(schema.execution_context_class.__module__, schema.execution_context_class.__name__)
print(result.data, result.errors)
"""


def _installed(versions: dict[str, str]) -> Callable[[str], str | None]:
    return versions.get


def test_the_installed_versions_are_in_the_band_so_our_executor_runs() -> None:
    assert executor.problem() is None
    assert schema.execution_context_class is PlannedExecutor


@pytest.mark.parametrize(
    ("versions", "named"),
    [
        ({"strawberry-graphql": "0.342.0", "graphql-core": "3.3.2"}, "strawberry-graphql 0.342.0"),
        ({"strawberry-graphql": "0.341.1", "graphql-core": "3.3.2"}, "strawberry-graphql 0.341.1"),
        ({"strawberry-graphql": "0.341.2", "graphql-core": "3.4.0"}, "graphql-core 3.4.0"),
        ({"strawberry-graphql": "0.341.2"}, "graphql-core (not installed)"),
        ({"strawberry-graphql": "not-a-version", "graphql-core": "3.3.2"}, "not-a-version"),
    ],
)
def test_a_version_outside_the_band_is_named(versions: dict[str, str], named: str) -> None:
    why = executor.version_problem(_installed(versions))
    assert why is not None
    assert named in why
    assert "outside the tested band" in why


def test_versions_inside_the_band_pass() -> None:
    versions = {"strawberry-graphql": "0.341.9", "graphql-core": "3.3.7"}
    assert executor.version_problem(_installed(versions)) is None


def test_when_ours_cannot_run_the_stock_executor_is_chosen_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        executor, "problem", lambda: "graphql-core's executor has no execute_field()"
    )
    executor.executor_class.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="clusterql.graph"):
            chosen = executor.executor_class()
            again = executor.executor_class()
    finally:
        executor.executor_class.cache_clear()
    assert chosen is None
    assert again is None
    warnings = [r for r in caplog.records if "stock GraphQL executor" in r.getMessage()]
    assert len(warnings) == 1
    assert "no execute_field()" in warnings[0].getMessage()


def test_an_installed_strawberry_outside_the_band_falls_back_and_still_answers(
    tmp_path: Path,
) -> None:
    # Given a Strawberry that claims a version we never tested (a dist-info found first on the
    # path, as after `pip install strawberry-graphql==0.999.0 --no-deps`)
    info = tmp_path / "strawberry_graphql-0.999.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: strawberry-graphql\nVersion: 0.999.0\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    # When the product's schema is imported and runs an operation
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    # Then the stock executor answered it, and one warning said why
    assert done.returncode == 0, done.stderr
    stock = StrawberryGraphQLCoreExecutionContext
    assert done.stdout.splitlines() == [
        f"{stock.__module__} {stock.__name__}",
        "{'__typename': 'Query'} None",
    ]
    assert done.stderr.count("stock GraphQL executor") == 1
    assert "strawberry-graphql 0.999.0 is outside the tested band" in done.stderr
