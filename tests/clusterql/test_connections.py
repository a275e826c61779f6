"""A process that defends its connections (SPEC §10), against `clusterql serve` in a real process
over real sockets: the head's size and time are capped, idle keep-alive connections close, and
connections beyond the cap are refused before they hold any memory."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusterql.settings import Settings
from models.engine import create_engine
from models.tokens import Permission
from tests import factories
from tests.databases import fresh_database_url
from tests.live_server import Server, serve_process

HEADER_TIMEOUT_S = 2.0
KEEP_ALIVE_S = 2
BODY_TIMEOUT_S = 3.0
IN_FLIGHT = 2
SLACK_S = 1.5  # the server's timer, the event loop and a busy test machine
MAX_HEADER_BYTES = 16 * 1024


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(size: int, path: str = "/healthz") -> bytes:
    """A complete GET request whose line and headers are exactly `size` bytes."""
    start = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ".encode()
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection or pauses for a second."""
    received = b""
    sock.settimeout(5)
    try:
        while chunk := sock.recv(65536):
            received += chunk
            sock.settimeout(1)
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def one_response(sock: socket.socket) -> bytes:
    """One whole response on a connection that stays open (its body by content-length)."""
    sock.settimeout(5)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head_part, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head_part.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head_part + b"\r\n\r\n" + body


def closed_after(sock: socket.socket, within_s: float) -> tuple[float, bytes]:
    """Seconds until the server closed `sock` (waiting at most `within_s`), and what it sent."""
    started = time.monotonic()
    sock.settimeout(within_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"still open after {within_s} s (received {received[:80]!r})")
    except ConnectionResetError:
        pass
    return time.monotonic() - started, received


def rss_kib(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return asyncio.run(fresh_database_url(tmp_path_factory.mktemp("connections")))


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[Server]:
    """One `clusterql serve` with short timeouts, so that the tests wait little."""
    url = database
    env = {
        "CLUSTERQL_DATABASE_URL": url,
        "CLUSTERQL_HEADER_TIMEOUT": str(HEADER_TIMEOUT_S),
        "CLUSTERQL_KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE_S),
        "CLUSTERQL_BODY_TIMEOUT": str(BODY_TIMEOUT_S),
        "CLUSTERQL_MAX_IN_FLIGHT": str(IN_FLIGHT),
    }
    with serve_process(env) as running:
        yield running


def test_the_documented_defaults() -> None:
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    assert defaults["max_header_bytes"] == MAX_HEADER_BYTES  # SPEC §10: 16 KiB
    assert defaults["header_timeout"] == 5.0
    assert defaults["keep_alive_timeout"] == 5
    assert defaults["max_connections"] == 1000
    assert defaults["body_timeout"] == 30.0


def test_a_head_of_the_cap_is_served_one_byte_more_is_431_and_a_megabyte_never_read(
    server: Server,
) -> None:
    with connect(server) as sock:
        sock.sendall(head(MAX_HEADER_BYTES))
        assert answer(sock).startswith(b"HTTP/1.1 200 ")
    with connect(server) as sock:
        sock.sendall(head(MAX_HEADER_BYTES + 1))
        refused = answer(sock)
    assert refused.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"x-content-type-options: nosniff\r\n" in refused
    with connect(server) as sock:
        started = time.monotonic()
        # the server may close the connection while the megabyte is being sent
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head(1024 * 1024))
        refused = answer(sock)
    assert time.monotonic() - started < 3
    assert refused == b"" or refused.startswith(b"HTTP/1.1 431 ")


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    server: Server,
) -> None:
    with connect(server) as sock:
        waited, received = closed_after(sock, HEADER_TIMEOUT_S + SLACK_S)
    assert waited >= HEADER_TIMEOUT_S - 0.2
    assert received == b""  # nothing came, nothing to answer


def test_a_head_trickled_a_line_at_a_time_is_closed_with_408_after_the_header_timeout(
    server: Server,
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        sock.settimeout(0.5)
        received = b""
        while time.monotonic() - started < HEADER_TIMEOUT_S + SLACK_S:
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # one header line every half second
                received = sock.recv(65536)
                break  # the server answered (and closed)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        waited = time.monotonic() - started
    assert HEADER_TIMEOUT_S - 0.2 <= waited < HEADER_TIMEOUT_S + SLACK_S, waited
    assert received == b"" or received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_an_idle_keep_alive_connection_closes_and_a_busy_one_outlives_the_header_timeout(
    server: Server,
) -> None:
    with connect(server) as sock:
        for _ in range(4):  # one request a second, on one connection: twice the header timeout
            sock.sendall(head(200))
            assert one_response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(1)
        waited, received = closed_after(sock, KEEP_ALIVE_S + SLACK_S)
    assert received == b""
    assert waited >= KEEP_ALIVE_S - 1.2  # a second of it had passed already


def test_the_limits_reach_every_worker_of_workers_n(tmp_path: Path) -> None:
    env = {
        "CLUSTERQL_DATABASE_URL": asyncio.run(fresh_database_url(tmp_path)),
        "CLUSTERQL_HEADER_TIMEOUT": str(HEADER_TIMEOUT_S),
    }
    with serve_process(env, workers=2) as server:
        for _ in range(4):  # new connections, spread by the kernel over both workers
            with connect(server) as sock:
                sock.sendall(head(MAX_HEADER_BYTES + 1))
                assert answer(sock).startswith(b"HTTP/1.1 431 ")
            with connect(server) as sock:
                waited, _ = closed_after(sock, HEADER_TIMEOUT_S + SLACK_S)
                assert waited >= HEADER_TIMEOUT_S - 0.2


def test_connections_beyond_the_cap_are_refused_with_503_and_grow_no_memory(
    tmp_path: Path,
) -> None:
    cap, beyond, pad = 20, 400, MAX_HEADER_BYTES - 1000  # heads nearly as large as allowed
    env = {
        "CLUSTERQL_DATABASE_URL": asyncio.run(fresh_database_url(tmp_path)),
        "CLUSTERQL_MAX_CONNECTIONS": str(cap),
        "CLUSTERQL_HEADER_TIMEOUT": "120",  # held heads stay held for the whole test
    }
    unfinished = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * pad
    with serve_process(env) as server:
        held = [connect(server) for _ in range(cap)]
        for sock in held:
            sock.sendall(unfinished)
        time.sleep(1)
        before = rss_kib(server)
        refused = 0
        for _ in range(beyond):
            with connect(server) as sock:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(unfinished)
                said = answer(sock)
                assert said == b"" or said.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
                refused += bool(said)
        time.sleep(1)
        after = rss_kib(server)
        # Had they been held like the first ones: 400 x 15 KiB = 6 MiB more.
        assert after - before < 1024, (before, after)
        assert refused > beyond // 2  # most read their 503 before the connection closed
        for sock in held:
            sock.close()
        time.sleep(0.5)
        with connect(server) as sock:  # the cap counts open connections: freed, it serves
            sock.sendall(head(200))
            assert answer(sock).startswith(b"HTTP/1.1 200 ")


async def _controller(url: str) -> str:
    engine = create_engine(url)
    try:
        return await factories.token(engine, Permission.CONTROLLER)
    finally:
        await engine.dispose()


def test_a_body_that_does_not_arrive_is_cut_off_and_frees_its_slot_of_the_requests_in_flight(
    server: Server, database: str
) -> None:
    secret = asyncio.run(_controller(database))  # a token's request reads its body in a slot
    slow = (
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + secret.encode() + b"\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"query": "'
    )
    held = [connect(server) for _ in range(IN_FLIGHT)]
    for sock in held:
        sock.sendall(slow)  # headers, then ten bytes of a thousand: the app waits for the rest
    time.sleep(0.5)
    with connect(server) as sock:  # every slot is taken by a body that does not come
        sock.sendall(head(200, "/graphql"))
        assert one_response(sock).startswith(b"HTTP/1.1 503 ")
    started = time.monotonic()
    for sock in held:
        closed_after(sock, BODY_TIMEOUT_S + SLACK_S)
        sock.close()
    assert time.monotonic() - started >= BODY_TIMEOUT_S - 0.5 - 0.2
    time.sleep(0.2)
    with connect(server) as sock:  # the slots are free again: a request without a token gets 401
        sock.sendall(head(200, "/graphql").replace(b"GET", b"POST", 1))
        assert one_response(sock).startswith(b"HTTP/1.1 401 ")


def test_serve_raises_the_open_files_limit_to_fit_the_connections_cap() -> None:
    # In a process of its own, so that this one's limit stays as it was.
    script = """
import resource
from clusterql.connections import open_files_for
from clusterql.settings import Settings
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))
print(open_files_for(Settings(max_connections=1000)), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = 1256 if hard == resource.RLIM_INFINITY else min(1256, hard)
    assert ran.stdout.split() == [str(expected), str(expected)], ran
