"""One request straight through an app's ASGI interface, as uvicorn hands it over: no HTTP
client and no socket, so that nothing but the app's own work happens (`bench.inprocess` times
it; `tests/clusterql/test_request_garbage.py` counts the garbage it leaves)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None
    body: bytes
    answered_s: float | None  # from the call to the answer's last byte (what a client waits for)
    returned_s: float  # from the call to the app's return (its work after the answer included)
    answered_at: float | None  # `time.perf_counter()` at the answer's last byte


async def post(app: ASGIApp, path: str, body: bytes, secret: str) -> tuple[int | None, bytes]:
    """A POST of JSON `body` to `path` with a token's `secret`: the answer's status and body."""
    answer = await post_timed(app, path, body, secret)
    return answer.status, answer.body


async def post_timed(app: ASGIApp, path: str, body: bytes, secret: str) -> Answer:
    """`post`, with when the answer's last byte was sent and when the app returned."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {secret}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages: list[Message] = []
    given = False
    answered_at: float | None = None

    async def receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never hangs up here
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal answered_at
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered_at = time.perf_counter()

    started = time.perf_counter()
    await app(scope, receive, send)
    returned = time.perf_counter() - started
    status = messages[0].get("status") if messages else None
    data = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    answered = None if answered_at is None else answered_at - started
    return Answer(status, data, answered, returned, answered_at)
