"""What every request goes through first, in one ASGI layer (inside Starlette's own error
handler, outside the routes):

- a websocket's socket gets a small send buffer (`clusterql.live.small_send_buffer`);
- an HTTP request gets its id (`clusterql.request_id`): in the scope's state, in the context
  variable that log lines read, and echoed as `X-Request-ID`;
- every HTTP answer carries the headers of `clusterql.headers.EVERYWHERE`;
- once answered, the request is counted and its access line written (`clusterql.access`).

These were four middlewares, each a coroutine frame per request and three of them a wrapper
around every message sent; the concepts stay in their modules, this one runs them with one
wrapper. The headers come in this order: the answer's own, then `EVERYWHERE`'s it does not
name, then `X-Request-ID`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clusterql import request_id
from clusterql.access import Access
from clusterql.headers import everywhere
from clusterql.live import SEND_BUFFER_BYTES, small_send_buffer


class Edge:
    def __init__(
        self, app: ASGIApp, access: Access, send_buffer_bytes: int = SEND_BUFFER_BYTES
    ) -> None:
        self.app = app
        self.access = access
        self.send_buffer_bytes = send_buffer_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                small_send_buffer(send, self.send_buffer_bytes)
            await self.app(scope, receive, send)
            return
        rid = request_id.of(scope)
        scope.setdefault("state", {})["request_id"] = rid
        id_header = (request_id.HEADER, rid.encode())
        status = 500  # if the app fails before it answers, the server answers 500

        async def send_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*everywhere(message.get("headers", ())), id_header]
            await send(message)

        access = self.access
        started = access.started()
        token = request_id.current.set(rid)
        try:
            await self.app(scope, receive, send_edge)
        finally:
            access.seen(scope, status, started)
            request_id.current.reset(token)
