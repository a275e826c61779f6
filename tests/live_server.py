"""A real clusterql server for tests: uvicorn in a subprocess on a free port of 127.0.0.1, either
started directly (`server_process`) or through `clusterql serve` (`serve_process`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import httpx

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0


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
def live_server(env: Mapping[str, str]) -> Iterator[str]:
    """Serve `clusterql.app:create_app` with `env` added to the environment; yields the base URL.

    `env` usually holds `CLUSTERQL_DATABASE_URL`. The server's output goes into the failure
    message if it does not come up, and it is stopped (SIGTERM, then SIGKILL) on exit.
    """
    with server_process(env) as server:
        yield server.url


@contextmanager
def server_process(env: Mapping[str, str]) -> Iterator[Server]:
    """Like `live_server`, but yields the process too (to kill it in crash tests)."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "clusterql.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with _running(command, port, env) as server:
        yield server


@contextmanager
def serve_process(env: Mapping[str, str], workers: int = 1) -> Iterator[Server]:
    """`clusterql serve --workers N` as an operator runs it (migrations first, JSON logs)."""
    port = _free_port()
    command = [sys.executable, "-m", "clusterql.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    with _running(command, port, env) as server:
        yield server


@contextmanager
def _running(command: list[str], port: int, env: Mapping[str, str]) -> Iterator[Server]:
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(base_url, process, output)
            yield Server(base_url, process)
        finally:
            _stop(process)


def _free_port() -> int:
    # The port could be taken between this close and uvicorn's bind; rare enough on a test box.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], output: IO[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    output.seek(0)
    raise RuntimeError(
        f"the server at {base_url} did not become healthy within {STARTUP_TIMEOUT_S:.0f} s "
        f"(exit code {process.poll()}); its output:\n{output.read()}"
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
