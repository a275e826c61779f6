"""A subscriber of cluster changes: `clusterql watch` prints each event as one JSON line.

It speaks graphql-transport-ws over a websocket to `/graphql`, as any client would: the token in
`connection_init`'s payload, then one `subscribe`; every `next` message is an event. When the
server closes the connection (a revoked token, a restart, too slow a reader) it says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.typing import Subprotocol

WATCH = (
    "subscription Watch($filter: ClusterFilter) { clusterChanges(filter: $filter) "
    "{ kind clusterId cluster { name provider controllerStatus nodesCount failedNodesCount } } }"
)


def websocket_url(url: str) -> str:
    """The websocket URL of the server at `url` (http://... or https://...)."""
    scheme, _, rest = url.rstrip("/").partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/graphql"


async def watch(
    url: str, token: str, where: dict[str, Any] | None, show: Callable[[str], None]
) -> str:
    """Show every event until the server closes the connection; returns why it did."""
    try:
        async with websockets.connect(
            websocket_url(url), subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws:
            return await _follow(ws, token, where, show)
    except websockets.InvalidHandshake as exc:
        return f"the server refused the websocket: {exc}"


async def _follow(
    ws: Any, token: str, where: dict[str, Any] | None, show: Callable[[str], None]
) -> str:
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    subscribe = {"query": WATCH, "variables": {"filter": where}}
    try:
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            return f"the server did not accept the connection: {ack}"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": subscribe}))
        async for message in ws:
            payload = json.loads(message)
            if payload.get("type") == "next":
                show(json.dumps(payload["payload"].get("data") or payload["payload"]))
            elif payload.get("type") in ("error", "complete"):
                return f"the subscription ended: {json.dumps(payload.get('payload'))}"
    except websockets.ConnectionClosed as closed:
        if closed.rcvd is not None:
            return f"the server closed the connection ({closed.rcvd.code}): {closed.rcvd.reason}"
        return "the connection was lost"
    return "the server closed the connection"
