"""Request bodies over the limit get 413 in the boundary's shape, before anything reads them.

Starlette's own `max_body_size` answers in plain text and replaces any response whose request
declared a large Content-Length, so it cannot keep either API's error shape.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clusterql.refusals import Boundary


class _TooLarge(Exception):
    pass


class BodyLimit:
    """At most `max_bytes` of request body, declared or sent; past it, 413 from `boundary`."""

    def __init__(self, app: ASGIApp, boundary: Boundary, *, max_bytes: int) -> None:
        self.app = app
        self.boundary = boundary
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refusal()(scope, receive, send)
            return
        received = 0
        started = False

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_limited, send_tracked)
        except _TooLarge:
            if started:
                raise
            await self._refusal()(scope, receive, send)

    def _refusal(self) -> ASGIApp:
        message = f"the body is too large: the limit is {self.max_bytes // 1024} KiB"
        return self.boundary.refuse(413, message)
