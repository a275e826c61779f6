"""The first layer of every request (`clusterql.edge`): request ids, and a websocket's small
send buffer."""

from __future__ import annotations

import re
import socket
from typing import Any

import httpx

from clusterql.access import Access, Watch
from clusterql.edge import Edge
from clusterql.live import SEND_BUFFER_BYTES

URL = "/runtime/api/v1/clusters"


async def test_a_sane_request_id_is_echoed_and_a_missing_or_odd_one_is_made(
    admin: httpx.AsyncClient,
) -> None:
    kept = await admin.post(URL, json={}, headers={"X-Request-ID": "abc-123:x.y_z"})
    assert kept.headers["x-request-id"] == "abc-123:x.y_z"
    made = [
        (await admin.post(URL, json={})).headers["x-request-id"],
        (await admin.post(URL, json={}, headers={"X-Request-ID": "has space"})).headers[
            "x-request-id"
        ],
        (await admin.post(URL, json={}, headers={"X-Request-ID": "x" * 129})).headers[
            "x-request-id"
        ],
    ]
    assert all(re.fullmatch("[0-9a-f]{32}", rid) for rid in made), made
    assert len(set(made)) == 3


async def test_the_request_id_comes_after_the_answers_own_headers(
    admin: httpx.AsyncClient,
) -> None:
    names = [name for name, _ in (await admin.post(URL, json={})).headers.raw]
    assert names[-3:] == [b"x-content-type-options", b"referrer-policy", b"x-request-id"]


class _Protocol:
    """What uvicorn's `send` is a method of: a protocol whose transport has the socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.transport = self
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    async def send(self, message: Any) -> None:
        pass


async def test_a_websockets_socket_gets_a_small_send_buffer() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def receive() -> Any:
        raise AssertionError("the app reads nothing here")

    edge = Edge(app, Access(Watch({}, "/graphql", counting=False)))
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * SEND_BUFFER_BYTES)
        await edge({"type": "websocket", "state": {}}, receive, _Protocol(sock).send)
        # Linux reports twice what was set (its bookkeeping)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * SEND_BUFFER_BYTES
    assert seen == ["websocket"]
