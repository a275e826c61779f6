"""Request bodies over the limit get 413 with the JSON error body, before anything reads them.

Starlette's own `max_body_size` answers in plain text and replaces any response whose request
declared a large Content-Length, so it cannot keep the `{"error": ...}` contract.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rest_shim.problems import error_response


class _TooLarge(Exception):
    pass


class BodyLimit:
    """`max_bytes` for every path, except the paths given their own limit in `per_path`."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.max_bytes)
        refusal = error_response(413, f"the body is too large: the limit is {limit // 1024} KiB")
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await refusal(scope, receive, send)
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
            await refusal(scope, receive, send)
