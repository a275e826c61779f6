"""Live updates over websockets: who may connect, how many, and when a connection is closed.

The websocket at `/graphql` speaks graphql-transport-ws only. The token goes in the payload of
`connection_init` (`{"Authorization": "Bearer <token>"}`, what GraphiQL sends from its Headers
tab) and must have `Admin`. Per process and per token, connections and subscriptions are bounded
(`LiveLimits`). Every `recheck_s` seconds one statement checks the tokens of all open
connections, and those of a revoked or expired token are closed. A connection is closed, with a
code and a reason a client can act on, when one of its subscriptions falls behind (its queue is
full) or when the process may have missed changes (the database restarted): the client then
connects again and reconciles with one `clusters` query.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, cast

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.utils.aio import aclosing

from clusterql.auth import authenticate
from clusterql.database import resources
from graph.context import Context, build_context
from graph.fanout import Ending, Fanout, Listening
from models import changes, tokens
from models.engine import read_transaction
from models.faults import is_unavailable
from models.limits import DEFAULT_STALE_AFTER
from models.snapshot import Snapshot
from models.tokens import Permission, Principal

log = logging.getLogger("clusterql.live")

NOBODY = Principal(token_id=0, name="", permissions=frozenset())
SEND_BUFFER_BYTES = 64 * 1024  # a websocket's kernel send buffer (small_send_buffer)
CLOSE_WAIT_S = 2.0  # for a close frame to get out before the connection is cut
MAX_REASON_BYTES = 123  # a websocket close reason's limit (RFC 6455, 5.5)


@dataclass(frozen=True, slots=True)
class LiveLimits:
    """What live updates may cost one process."""

    connections_per_token: int = 10
    subscriptions_per_token: int = 100
    queue: int = 100  # events waiting for one subscriber
    recheck_s: float = 2.0  # between checks that the tokens of open connections are live
    stale_after: timedelta = DEFAULT_STALE_AFTER
    init_timeout_s: float = 10.0  # for connection_init once the websocket is open


class Close(IntEnum):
    """The close codes a client may see (graphql-transport-ws's own, and ours)."""

    BAD_REQUEST = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403  # no Admin; the token was revoked or expired
    TOO_SLOW = 4413  # a subscription's queue was full
    TOO_MANY = 4429  # connections of this token, or failed authentications from this address
    UNAVAILABLE = 4503  # the database is unavailable, or changes may have been missed


UNAUTHENTICATED = (
    'authentication required: send {"Authorization": "Bearer <token>"} in connection_init'
)
NOT_ADMIN = "this token lacks the Admin permission"
REVOKED = "the token was revoked or has expired"
UNAVAILABLE = "the database is unavailable right now: connect again in a few seconds"


def _reason(text: str) -> str:
    raw = text.encode()
    return text if len(raw) <= MAX_REASON_BYTES else raw[:MAX_REASON_BYTES].decode(errors="ignore")


def _bearer(payload: dict[str, Any]) -> str | None:
    for key, value in payload.items():
        if isinstance(key, str) and key.lower() == "authorization" and isinstance(value, str):
            return value
    return None


class Live:
    """The process's live connections, the fan-out that feeds them, and their sweeps."""

    def __init__(self, engine: AsyncEngine, limits: LiveLimits) -> None:
        self.engine = engine
        self.limits = limits
        self.fanout = Fanout(engine, limits.queue, limits.stale_after)
        self.by_token: dict[int, set[LiveHandler]] = {}
        self.hearing = True  # changes reach the fan-out (on PostgreSQL: while listening)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Live]:
        """The fan-out, the token sweep, the staleness watch and the feed, while in use."""
        jobs = [self.fanout.run(), self._sweep(), self._stale_watch()]
        stop_hearing: Callable[[], None] | None = None
        if self.engine.dialect.name == "postgresql":
            self.hearing = False
            jobs.append(
                changes.listen(
                    self.engine, self.fanout.changed, self._lost, connected=self._connected
                )
            )
        else:
            stop_hearing = changes.hear_locally(self.engine, self.fanout.changed)
        tasks = [asyncio.create_task(_logged(job)) for job in jobs]
        try:
            yield self
        finally:
            if stop_hearing is not None:
                stop_hearing()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task

    def _connected(self) -> None:
        self.hearing = True

    def _lost(self, reason: str) -> None:
        self.hearing = False
        self.fanout.interrupted(reason)

    def admit(self, handler: LiveHandler, principal: Principal) -> tuple[Close, str] | None:
        """Count `handler` for its token, or say why it may not connect."""
        if not principal.may(Permission.ADMIN):
            return Close.FORBIDDEN, NOT_ADMIN
        if not self.hearing:  # it would miss changes: better to come back a little later
            return Close.UNAVAILABLE, UNAVAILABLE
        held = self.by_token.setdefault(principal.token_id, set())
        if len(held) >= self.limits.connections_per_token:
            limit = self.limits.connections_per_token
            return Close.TOO_MANY, f"this token already holds {limit} connections, the most allowed"
        held.add(handler)
        return None

    def leave(self, handler: LiveHandler) -> None:
        held = self.by_token.get(handler.principal.token_id)
        if held is not None:
            held.discard(handler)
            if not held:
                del self.by_token[handler.principal.token_id]

    def subscriptions_of(self, token_id: int) -> int:
        return sum(len(h.operations) for h in self.by_token.get(token_id, ()))

    async def _sweep(self) -> None:
        """Close the connections of tokens revoked or expired since they connected."""
        while True:
            await asyncio.sleep(self.limits.recheck_s)
            if not self.by_token:
                continue
            held = set(self.by_token)
            try:
                async with read_transaction(self.engine) as conn:
                    live = await tokens.active_ids(conn, held, datetime.now(UTC))
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                continue  # checked again next time
            for token_id in held - live:
                for handler in list(self.by_token.get(token_id, ())):
                    handler.close_soon(Close.FORBIDDEN, REVOKED)

    async def _stale_watch(self) -> None:
        await self.fanout.watch_staleness(every_s=self.limits.recheck_s)


async def _logged(job: Awaitable[None]) -> None:
    try:
        await job
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("a live-updates task failed")
        raise


def small_send_buffer(send: Send, send_buffer_bytes: int = SEND_BUFFER_BYTES) -> None:
    """Give a websocket's socket a small kernel send buffer (`clusterql.edge` calls this).

    Linux grows a connection's send buffer up to megabytes, so a subscriber that stops reading
    would hold that much kernel memory and be noticed (its queue full) only after megabytes of
    events. uvicorn does not hand the socket to the app; its `send` is a method of the
    connection's protocol, whose transport has it. Anything else (another server) is left alone.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Messages as text frames, as graphql-transport-ws requires (the view's JSON is bytes)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class LiveHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """One websocket connection: authenticated by its `connection_init`, then its subscriptions,
    each with a context of its own (its loaders change with every event)."""

    principal: Principal = NOBODY
    _closing: asyncio.Task[None] | None = None
    _main: asyncio.Task[Any] | None = None
    _cut = False

    @property
    def scope(self) -> Any:
        return cast("ASGIWebSocketAdapter", self.websocket).ws.scope

    @property
    def live(self) -> Live:
        found = resources(self.scope["app"]).live
        assert found is not None
        return found

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        if self.connection_init_received:
            await self.websocket.close(4429, "Too many initialisation requests")
            return
        self.connection_init_received = True
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(Close.BAD_REQUEST, "Invalid connection init payload")
            return
        refusal = await self._authenticate(_bearer(payload))
        if refusal is not None:
            await self.websocket.close(refusal[0], _reason(refusal[1]))
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def _authenticate(self, header: str | None) -> tuple[Close, str] | None:
        scope = self.scope
        limiter = scope["app"].state.rate_limiter
        rate = limiter.limits.address
        address = (scope.get("client") or ("",))[0]
        if rate.limited and limiter.addresses.wait(address, rate, take=False):
            return Close.TOO_MANY, "too many failed authentications from this address: wait"
        snapshot = Snapshot(self.live.engine)
        try:
            principal = await authenticate(snapshot, header)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            return Close.UNAVAILABLE, UNAVAILABLE
        finally:
            await snapshot.close()
        if principal is None:
            if rate.limited:
                limiter.addresses.wait(address, rate)
            return Close.UNAUTHENTICATED, UNAUTHENTICATED
        refusal = self.live.admit(self, principal)
        if refusal is None:
            self.principal = principal
        return refusal

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.live.limits.subscriptions_per_token
        if (
            self.connection_acknowledged
            and self.live.subscriptions_of(self.principal.token_id) >= limit
            and message["id"] not in self.operations
        ):
            error = f"this token already runs {limit} subscriptions, the most allowed"
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [{"message": error}]}
            )
            return
        await super().handle_subscribe(message)

    def _context(self, operation: Operation[Context, None]) -> Context:
        opened = resources(self.scope["app"])
        context = build_context(
            opened.engine,
            opened.cursors,
            self.principal,
            f"{self.context.request_id}/{operation.id}",
            limits=opened.limits,
            clock=opened.clock,
            stale_after=opened.stale_after,
        )
        context.listening = Listening(self.live.fanout, self._ended)
        return context

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Strawberry's, with a context for this operation (theirs share the connection's)."""
        try:
            result_source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self._context(operation),
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    def _ended(self, why: Ending, detail: str) -> None:
        if why is Ending.TOO_SLOW:
            self.close_soon(Close.TOO_SLOW, f"too slow: {detail}; connect again, then reconcile")
        else:
            self.close_soon(Close.UNAVAILABLE, f"{detail}: connect again, then reconcile")

    def close_soon(self, code: Close, reason: str) -> None:
        """Close this connection without waiting for it (its client may not be reading)."""
        if self._closing is None:
            level = logging.INFO if code is Close.FORBIDDEN else logging.WARNING
            log.log(level, "closing a live connection of token %s: %s", self.principal.name, reason)
            self.live.leave(self)
            self._closing = asyncio.create_task(self._close(code, _reason(reason)))

    async def _close(self, code: Close, reason: str) -> None:
        """Send the close frame; a client that reads nothing never lets it out (the server
        waits for its buffer to drain): then the connection is cut (`handle` returns)."""
        with suppress(Exception):  # the client may be gone already
            await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_WAIT_S)
            return
        if self._main is not None:
            self._cut = True
            self._main.cancel()

    async def handle(self) -> None:
        self._main = asyncio.current_task()
        try:
            await super().handle()
        except asyncio.CancelledError:
            if not self._cut or self._main is None or self._main.uncancel():
                raise
            # Cut by `_close`: the app returns, and the server drops the connection.

    async def shutdown(self) -> None:
        self.live.leave(self)
        await super().shutdown()


def connection_context(engine: AsyncEngine, cursors: Any) -> Context:
    """The context of a connection before it authenticates: nobody's (each subscription gets
    its own once it has; see `LiveHandler._context`)."""
    return build_context(engine, cursors, NOBODY, uuid.uuid4().hex)
