"""A throwaway PostgreSQL server that a test module or a benchmark owns, and may stop and start.

Made by `scripts/postgres` (the script CI uses for the PostgreSQL pass): on 127.0.0.1, fsync off,
removed on exit. The tests using one run whenever PostgreSQL's server binaries are installed, once:
in the SQLite pass of the suite (what they test does not depend on the pass's database).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres"
TIMEOUT_S = 120


def _script(*args: str) -> str:
    done = subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/postgres {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass(frozen=True)
class PostgresServer:
    directory: str
    url: str  # the server's own `postgres` database: for CREATE DATABASE

    @property
    def log(self) -> Path:
        """The server's log (its stderr)."""
        return Path(self.directory) / "server.log"

    @property
    def pid(self) -> int:
        """The postmaster's process id (every backend is one of its children)."""
        return int((Path(self.directory) / "data" / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        """Stop the server (open sessions are cut off); returns once it is down."""
        _script("stop", self.directory)

    def start(self) -> None:
        """Start it again on the same port; returns once it accepts connections."""
        _script("start", self.directory)


def missing_binaries() -> str | None:
    """Why no server can be started here, or None."""
    try:
        _script("bindir")
    except RuntimeError as exc:
        return str(exc)
    return None


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A new server, removed on exit (`missing_binaries` says beforehand why there can be none)."""
    directory = _script("new")
    try:
        yield PostgresServer(directory, _script("url", directory))
    finally:
        _script("destroy", directory)
