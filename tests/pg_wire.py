"""Counting the statements a client sends PostgreSQL, on the wire, whatever the client's code.

A TCP proxy on 127.0.0.1 between the app and the server reads the frontend protocol
(https://www.postgresql.org/docs/15/protocol-message-formats.html): every simple query ('Q',
`BEGIN`, `ROLLBACK` and the like) and every execution of a prepared statement ('E') is one
statement. Parse, Bind, Describe and Sync are not: asyncpg prepares a statement once and
executes it many times.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

_UNTYPED_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: the startup follows


@dataclass
class WireLog:
    """What the clients sent: simple queries by text, prepared statements by text when known."""

    statements: list[str] = field(default_factory=list)
    _prepared: dict[bytes, str] = field(default_factory=dict)

    def clear(self) -> None:
        self.statements.clear()

    def _on_message(self, kind: bytes, body: bytes, portal_statement: dict[bytes, bytes]) -> None:
        if kind == b"Q":
            self.statements.append(body.rstrip(b"\0").decode())
        elif kind == b"P":  # Parse: name \0 query \0 ...
            name, _, rest = body.partition(b"\0")
            self._prepared[name] = rest.partition(b"\0")[0].decode()
        elif kind == b"B":  # Bind: portal \0 statement \0 ...
            portal, _, rest = body.partition(b"\0")
            portal_statement[portal] = rest.partition(b"\0")[0]
        elif kind == b"E":  # Execute: portal \0 max rows
            portal = body.partition(b"\0")[0]
            name = portal_statement.get(portal, b"")
            self.statements.append(self._prepared.get(name, "<prepared statement>"))


async def _pipe_server_bound(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: WireLog
) -> None:
    portal_statement: dict[bytes, bytes] = {}
    typed = False
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            if typed:
                header = await reader.readexactly(5)
                kind, length = header[:1], struct.unpack("!I", header[1:])[0]
                body = await reader.readexactly(length - 4)
                log._on_message(kind, body, portal_statement)
                writer.write(header + body)
            else:
                header = await reader.readexactly(4)
                length = struct.unpack("!I", header)[0]
                body = await reader.readexactly(length - 4)
                code = struct.unpack("!I", body[:4])[0]
                typed = code not in _UNTYPED_REQUESTS
                writer.write(header + body)
            await writer.drain()
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def counting_proxy(database_url: str) -> AsyncIterator[tuple[str, WireLog]]:
    """A proxy in front of the server of `database_url`; yields its URL and the log."""
    url = make_url(database_url)
    log = WireLog()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(url.host, url.port or 5432)
        await asyncio.gather(_pipe_server_bound(client_r, server_w, log), _pipe(server_r, client_w))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False), log
    finally:
        server.close()
        await server.wait_closed()
