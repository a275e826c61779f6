"""Fixtures of the tests that run clusterql's commands as real processes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from tests.databases import fresh_database_url

COMMAND_TIMEOUT_S = 60.0
Cli = Callable[..., subprocess.CompletedProcess[str]]  # runs a command, its output as text


@pytest.fixture
def run_isolated(tmp_path: Path) -> Cli:
    """Runs a command as an operator would, away from the tests' own settings: no CLUSTERQL_*
    from this environment (only what `env` adds), cwd a temp dir, no stdin, output as text."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERQL_")}

    def run(
        command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            env={**base, **(env or {})},
            cwd=tmp_path,
            timeout=COMMAND_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """An empty database (no tables): the commands create them."""
    return await fresh_database_url(tmp_path)
