"""What a connection may cost before its request is read (SPEC §10): uvicorn's HTTP protocol with
the limits it lacks, so that the process defends itself without a proxy in front.

uvicorn (with httptools, which `uvicorn[standard]` brings) caps none of these: a request head of
any size is read (httptools keeps it in memory until the head ends), a connection that sends
nothing, or a header line now and then, stays open for good (its keep-alive timeout starts only
after a first response), and `limit_concurrency` answers 503 only once a head has arrived, so
every connection waiting for its head is held whatever the limit. `GuardedHttpProtocol` adds:

- **a cap on the head** (request line and headers) in bytes: past it, 431 and the connection
  closes, before the rest is read;
- **a deadline for the head**: from the connection's first byte on (or from its opening, for the
  first request), the head must be complete within `header_timeout_s`, else the connection
  closes (408 if part of a head came);
- **a deadline for the body**: a request's body must be complete within `body_timeout_s` of its
  head, else the connection closes (the app, which may be waiting for the body while it holds one
  of the requests in flight, sees the client gone);
- **a cap on open connections per process**: a connection beyond it is answered 503 with
  `Retry-After` at once and closed, before anything is read, so it holds no memory.

Idle keep-alive connections are closed by uvicorn's own `timeout_keep_alive`. uvicorn pickles its
configuration into each worker of `--workers N`, so the protocol, with its limits, reaches every
worker (`uvicorn_options`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

# Each worker of `--workers N` unpickles this module's protocol before it starts answering the
# supervisor's health check (within 5 s): so this module imports nothing of the app at its top.
if TYPE_CHECKING:
    from clusterql.settings import Settings

log = logging.getLogger("clusterql.connections")

WARN_EVERY_S = 10.0  # refused connections are logged at most this often, with their count
WORKER_HEALTHCHECK_S = 30  # seconds a worker may take to answer the supervisor's health check


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits of one process's connections (their defaults: `clusterql.settings`)."""

    max_connections: int
    max_header_bytes: int
    header_timeout_s: float
    keep_alive_s: int
    body_timeout_s: float


def _answer(status: str, message: str, *extra: str) -> bytes:
    """A whole response, written before the app sees any request (no API's shape: which API
    the request was for is not known yet), with the headers every response carries."""
    from clusterql.headers import EVERYWHERE, NO_STORE  # see the imports above

    body = message.encode()
    head = [
        f"HTTP/1.1 {status}".encode(),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        *(name + b": " + value for name, value in (*EVERYWHERE, *NO_STORE)),
        *(line.encode() for line in extra),
        b"connection: close",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@functools.cache
def too_many() -> bytes:
    return _answer(
        "503 Service Unavailable",
        "too many connections to this process: try again in a second",
        "retry-after: 1",
    )


@functools.cache
def head_too_large() -> bytes:
    return _answer(
        "431 Request Header Fields Too Large", "the request line and headers are too large"
    )


@functools.cache
def head_too_slow() -> bytes:
    return _answer("408 Request Timeout", "the request headers did not arrive in time")


class _Refusals:
    """Counts refused connections and says so in the log at most every `WARN_EVERY_S`."""

    count = 0
    warned_at = -WARN_EVERY_S

    @classmethod
    def note(cls, limit: int) -> None:
        cls.count += 1
        now = time.monotonic()
        if now - cls.warned_at >= WARN_EVERY_S:
            log.warning(
                "too many connections: %d open is the limit; refused %d since the last warning",
                limit,
                cls.count,
            )
            cls.count, cls.warned_at = 0, now


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on the head's size and time, and on connections."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.reading_head = True  # no head has ended since the last request (or ever)
        self.head_bytes = 0
        self.head_deadline: asyncio.TimerHandle | None = None
        self.body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.connections.discard(self)
            _Refusals.note(self.limits.max_connections)
            transport.write(too_many())
            transport.close()
            return
        self._start_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        self._stop_body_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.reading_head:
            super().data_received(data)
            return
        if self.head_deadline is None:
            self._start_head_deadline()
        room = self.limits.max_header_bytes - self.head_bytes
        if len(data) <= room:
            self.head_bytes += len(data)
            super().data_received(data)
            return
        # More than the head may still take: the head must end within what fits.
        super().data_received(data[:room])
        if self.reading_head:
            self._stop_head_deadline()
            if not self.transport.is_closing():
                self.transport.write(head_too_large())
                self.transport.close()
            return
        rest = data[room:]
        receiver = self.transport.get_protocol()  # a WebSocket's, if the head upgraded
        if not self.transport.is_closing() and receiver is not None:
            receiver.data_received(rest)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self._stop_head_deadline()
        super().on_headers_complete()
        if not self.parser.should_upgrade():  # a WebSocket has timeouts of its own
            self.body_deadline = self.loop.call_later(
                self.limits.body_timeout_s, self._body_timed_out
            )

    def on_message_complete(self) -> None:
        self._stop_body_deadline()
        super().on_message_complete()
        # What follows is the next request's head; its deadline starts with its first byte
        # (until then the connection is idle, and uvicorn's keep-alive timeout closes it).
        self.reading_head = True
        self.head_bytes = 0

    def _start_head_deadline(self) -> None:
        self.head_deadline = self.loop.call_later(
            self.limits.header_timeout_s, self._head_timed_out
        )

    def _stop_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _stop_body_deadline(self) -> None:
        if self.body_deadline is not None:
            self.body_deadline.cancel()
            self.body_deadline = None

    def _body_timed_out(self) -> None:
        # The app may be reading the body (and hold a slot of CLUSTERQL_MAX_IN_FLIGHT): closing
        # the connection ends its wait (it receives `http.disconnect`) and frees the slot.
        self.body_deadline = None
        if not self.transport.is_closing():
            log.info(
                "a request body was not complete %s s after its headers: connection closed",
                self.limits.body_timeout_s,
            )
            self.transport.close()

    def _head_timed_out(self) -> None:
        self.head_deadline = None
        if not self.reading_head or self.transport.is_closing():
            return
        if self.head_bytes:
            self.transport.write(head_too_slow())
        self.transport.close()


def limits_of(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=settings.max_connections,
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout,
        keep_alive_s=settings.keep_alive_timeout,
        body_timeout_s=settings.body_timeout,
    )


FILES_BESIDES_CONNECTIONS = 256  # the database pool, logs, the listening socket, imports


def open_files_for(settings: Settings) -> int:
    """Raise this process's soft limit on open files (which its workers inherit) so that
    `max_connections` connections fit; returns the limit now in force. At the limit, accepting
    a connection fails, and the cap above would never answer."""
    needed = settings.max_connections + FILES_BESIDES_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "only %d open files are allowed (hard limit): fewer than CLUSTERQL_MAX_CONNECTIONS "
            "(%d) connections will be accepted; raise `ulimit -Hn` or lower the setting",
            soft,
            settings.max_connections,
        )
    return soft


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `uvicorn.run` takes to apply `settings`' connection limits, in every worker."""
    limits = limits_of(settings)
    return {
        # A partial of a module-level class pickles, as `--workers N` needs.
        "http": functools.partial(GuardedHttpProtocol, limits=limits),
        "timeout_keep_alive": limits.keep_alive_s,
        # uvicorn's own 503 comes only once a head has arrived: the cap above refuses earlier.
        "limit_concurrency": None,
        # A worker answers the supervisor's health check only once it has unpickled its config,
        # and so imported this module and uvicorn's, which takes seconds on a loaded machine:
        # uvicorn's 5 s would have the supervisor kill every worker before it starts.
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_S,
    }
