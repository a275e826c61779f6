"""Request bodies over the limit get 413 in the boundary's shape, before anything reads them
(each API's gate, `clusterql.api_gate`, checks the declared length and reads through `limited`).

Starlette's own `max_body_size` answers in plain text and replaces any response whose request
declared a large Content-Length, so it cannot keep either API's error shape.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from clusterql.refusals import Boundary


class TooLarge(Exception):
    """More body arrived than the limit (raised by the receive of `limited`)."""


def declared_too_large(scope: Scope, max_bytes: int) -> bool:
    declared = dict(scope["headers"]).get(b"content-length", b"")
    return declared.isdigit() and int(declared) > max_bytes


def limited(receive: Receive, max_bytes: int) -> Receive:
    """`receive`, raising `TooLarge` once more than `max_bytes` of body arrived."""
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise TooLarge
        return message

    return receive_limited


def too_large(boundary: Boundary, max_bytes: int) -> Response:
    message = f"the body is too large: the limit is {max_bytes // 1024} KiB"
    return boundary.refuse(413, message)
