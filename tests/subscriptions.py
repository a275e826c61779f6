"""A graphql-transport-ws client for tests and benchmarks: a real websocket (`websockets`) to a
real server, speaking the protocol message by message."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

PROTOCOL = "graphql-transport-ws"
CHANGES = (
    "subscription S($filter: ClusterFilter) { clusterChanges(filter: $filter) "
    "{ kind clusterId cluster { id name nodesCount nodes { name status } } } }"
)
_ids = itertools.count(1)

# Twenty copies of two 253-character fields per node: about 1.5 MB an event for 300 nodes, cheap
# to complete, so that a stalled reader's buffers (the kernel's hold megabytes) fill after a few.
_COPIES = " ".join(f"h{i}: hostname d{i}: internalDns" for i in range(10))
BIG_EVENTS = (
    "subscription S($filter: ClusterFilter) { clusterChanges(filter: $filter) { kind cluster "
    f"{{ id nodes {{ name {_COPIES} }} }} }} }}"
)


def big_report(name: str) -> dict[str, Any]:
    """A controller's report of a 300-node cluster with the longest hostnames and DNS names
    allowed: what `BIG_EVENTS` makes big events of."""
    node = {"status": "MONITORED", "sensorInstalled": False}
    nodes = [
        {"name": f"n{i}", "hostname": f"{i:04}" + "h" * 249, "internalDns": f"{i:04}" + "d" * 249}
        for i in range(300)
    ]
    return {
        "name": name, "provider": "aws", "regions": ["eu-west-1"], "controllerVersion": "1.0.0",
        "controllerStatus": "RUNNING", "nodes": [{**n, **node} for n in nodes],
    }  # fmt: skip


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/graphql"


class Refused(Exception):
    """The server closed the connection: its close code and reason."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class Live:
    """One connection: `subscribe`, then `event` (the next `next` payload's data)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def init(self, secret: str | None) -> None:
        payload = {} if secret is None else {"Authorization": f"Bearer {secret}"}
        await self.send({"type": "connection_init", "payload": payload})
        message = await self.receive(within=10)
        if message.get("type") != "connection_ack":
            raise AssertionError(f"expected connection_ack, got {message}")

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = 5.0) -> dict[str, Any]:
        try:
            text = await asyncio.wait_for(self.ws.recv(), within)
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            raise Refused(code, exc.rcvd.reason if exc.rcvd else "") from None
        assert isinstance(text, str), "graphql-transport-ws messages are text frames"
        message: dict[str, Any] = json.loads(text)
        return message

    async def subscribe(self, query: str = CHANGES, variables: dict[str, Any] | None = None) -> str:
        op = str(next(_ids))
        payload = {"query": query, "variables": variables or {}}
        await self.send({"type": "subscribe", "id": op, "payload": payload})
        return op

    async def event(self, within: float = 5.0) -> dict[str, Any]:
        """The data of the next `next` message (errors fail the test)."""
        message = await self.receive(within)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def closed(self, within: float) -> Refused:
        """Read until the server closes the connection; how it did."""
        async with asyncio.timeout(within):
            while True:
                try:
                    await self.receive(within)
                except Refused as refused:
                    return refused


@asynccontextmanager
async def connected(
    base_url: str, secret: str | None, *, init: bool = True, **options: Any
) -> AsyncIterator[Live]:
    """A connection to `base_url`'s `/graphql`, initialised with `secret` unless `init=False`."""
    async with websockets.connect(
        ws_url(base_url), subprotocols=[Subprotocol(PROTOCOL)], **options
    ) as ws:
        live = Live(ws)
        if init:
            await live.init(secret)
        yield live


class Stalled:
    """A subscriber that never reads: a plain socket with a small receive buffer, spoken to
    through websockets' sans-I/O protocol, read only when the test says so (`drain`)."""

    def __init__(
        self, base_url: str, secret: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.protocol = ClientProtocol(
            parse_uri(ws_url(base_url)), subprotocols=[Subprotocol(PROTOCOL)], max_size=None
        )
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.handshake_exc is None and not self._opened():
            self.protocol.receive_data(self.sock.recv(4096))
        auth = {"Authorization": f"Bearer {secret}"}
        self.protocol.send_text(json.dumps({"type": "connection_init", "payload": auth}).encode())
        payload = {"query": query, "variables": variables or {}}
        subscribe = {"type": "subscribe", "id": "1", "payload": payload}
        self.protocol.send_text(json.dumps(subscribe).encode())
        self._flush()

    def _opened(self) -> bool:
        return any(isinstance(e, Response) for e in self.protocol.events_received())

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def drain(self, within: float) -> tuple[int, int | None]:
        """Read until the server ends the connection: messages received, and the close code
        (None when the server cut the connection without a close frame)."""
        self.sock.settimeout(within)
        messages, code = 0, None
        while True:
            data = self.sock.recv(65536)
            if not data:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    messages += 1
                elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    code = Close.parse(event.data).code
            if not data:
                self.sock.close()
                return messages, code
