"""Response headers every answer carries, and request headers that may appear only once.

- Every response: `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
- API answers (`api=True`, set by each API's middleware stack): `Cache-Control: no-store`, since
  they hold fleet data for one caller. The static GraphiQL files stay cacheable.
- A request with two `Authorization` or two `Host` headers is refused with 400 in the API's
  shape: a proxy that checks the first one and an app that reads the last one would disagree
  about who is asking, or for which site.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clusterql.refusals import Boundary

EVERYWHERE = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
NO_STORE = ((b"cache-control", b"no-store"),)
SINGLETONS = (b"authorization", b"host")


def _adding(send: Send, extra: tuple[tuple[bytes, bytes], ...]) -> Send:
    async def send_with(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", ())}
            message["headers"] = [
                *message.get("headers", ()),
                *(header for header in extra if header[0] not in present),
            ]
        await send(message)

    return send_with


class SecurityHeaders:
    """ASGI middleware for every path: the headers of `EVERYWHERE`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _adding(send, EVERYWHERE))


class ApiHeaders:
    """ASGI middleware of one API: no caching of its answers, and singleton headers checked."""

    def __init__(self, app: ASGIApp, boundary: Boundary) -> None:
        self.app = app
        self.boundary = boundary

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _adding(send, NO_STORE)
        names = [name.lower() for name, _ in scope["headers"]]
        for singleton in SINGLETONS:
            if names.count(singleton) > 1:
                header = singleton.decode().title()
                refusal = self.boundary.refuse(400, f"send the {header} header once, not twice")
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
