"""Servers in a subprocess on a free port of 127.0.0.1, for tests and benchmarks alike: clusterql
started directly (`server_process`) or through `clusterql serve` (`serve_process`), or any
command that serves `GET /healthz` (`running`: the benchmarks' floor and PostGraphile too)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

STARTUP_TIMEOUT_S = 120.0  # a loaded 2-core machine took 50 s to start two workers
SHUTDOWN_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]


def token_client(base_url: str, secret: str, timeout: float = 30.0) -> httpx.AsyncClient:
    """An HTTP client to a server at `base_url`, with a token's `secret` as its credentials."""
    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=timeout
    )


@contextmanager
def running(
    command: Callable[[int], list[str]],
    env: Mapping[str, str] | None = None,
    *,
    output: Path | None = None,
    stdout: Path | None = None,
    base_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Server]:
    """Runs `command(port)` for a free port with `env` added to `base_env` (this process's
    environment by default); yields once `GET /healthz` answers 200, and stops it on exit
    (SIGTERM, then SIGKILL). Its output goes to `output` (a temporary file if None), its stdout
    to `stdout` if given; what it wrote is in the error if it never comes up."""
    port = _free_port()
    with ExitStack() as files:
        err: IO[bytes]
        if output is None:
            err = files.enter_context(tempfile.TemporaryFile())
        else:
            err = files.enter_context(output.open("ab"))
        out = files.enter_context(stdout.open("ab")) if stdout else err
        process = subprocess.Popen(
            command(port),
            env={**(os.environ if base_env is None else base_env), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
        )

        def said() -> str:
            if output is not None:
                return output.read_text(errors="replace")
            err.seek(0)
            return bytes(err.read()).decode(errors="replace")

        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(base_url, process, said)
            yield Server(base_url, process)
        finally:
            _stop(process)


@contextmanager
def server_process(env: Mapping[str, str]) -> Iterator[Server]:
    """`clusterql.app:serving_app` (what `clusterql serve` runs) under uvicorn, with `env`
    (usually `CLUSTERQL_DATABASE_URL`)."""
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "clusterql.app:serving_app"]
    with running(
        lambda port: [*uvicorn, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"], env
    ) as server:
        yield server


@contextmanager
def live_server(env: Mapping[str, str]) -> Iterator[str]:
    """Like `server_process`, yielding only the base URL."""
    with server_process(env) as server:
        yield server.url


def serve_command(*flags: str) -> Callable[[int], list[str]]:
    """`clusterql serve FLAGS --port N` on 127.0.0.1, as an operator runs it."""
    serve = [sys.executable, "-m", "clusterql.cli", "serve", "--host", "127.0.0.1", *flags]
    return lambda port: [*serve, "--port", str(port)]


@contextmanager
def serve_process(
    env: Mapping[str, str], workers: int = 1, *, output: Path | None = None
) -> Iterator[Server]:
    """`clusterql serve --workers N --log-level warning` (migrations first, JSON logs)."""
    command = serve_command("--workers", str(workers), "--log-level", "warning")
    with running(command, env, output=output) as server:
        yield server


def _free_port() -> int:
    # The port could be taken between this close and the server's bind; rare enough here.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(
    base_url: str, process: subprocess.Popen[bytes], said: Callable[[], str]
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    _stop(process)
    raise RuntimeError(
        f"the server at {base_url} did not become healthy within {STARTUP_TIMEOUT_S:.0f} s "
        f"(exit code {process.poll()}); its output:\n{said()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of process `pid` and all its descendants, from /proc (Linux);
    None where that cannot be read."""
    total: float | None = None
    pending = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total = (total or 0.0) + (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            continue
        pending += [int(child) for child in children]
    return total
