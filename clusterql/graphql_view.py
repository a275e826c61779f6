"""`/graphql`: Strawberry's ASGI view with our context, strict JSON and GraphQL-shaped refusals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from clusterql import pages
from clusterql.database import resources
from clusterql.live import LiveHandler, LiveLimits, TextWebSocketAdapter, connection_context
from clusterql.refusals import GRAPHQL
from graph.context import Context, build_context
from graph.errors import RETRY_LATER, Code
from graph.outcome import Outcome
from models.tokens import Principal
from rest_shim.body import decode_json
from rest_shim.problems import RestError

# JSON values a /graphql body may hold: the strict decoder and graphql-core's coercion of the
# variables cost about 2 us a value in Python, and 8 MiB can hold 4 million of them.
MAX_JSON_VALUES = 100_000
_REQUEST_FIELDS = {"query", "variables", "operationName", "extensions"}


def json_values(body: bytes, stop: int = MAX_JSON_VALUES) -> int:
    """How many JSON values `body` holds, counted up to `stop` + 1 (0 when it is not JSON, or
    when it holds at most `stop` without being counted exactly).

    Commas bound the count from above and cost one C pass (every value but the first of a
    container follows one, and the first ones are at most one a container, nested no deeper
    than the decoder allows); only a body with more than `stop // 2` of them goes further. In
    one of few strings and no escaped quote (an attacker's list of numbers), each comma outside
    the strings follows a value, found by splitting at the quotes in C; any other is decoded,
    by orjson, to count exactly (orjson takes 70 ms for 4 million numbers, a few for one long
    string).
    """
    commas = body.count(b",")
    if commas < stop // 2 - 1000:
        return 0
    if body.count(b'"') < commas // 4 and b'\\"' not in body:
        # Every quote opens or closes a string: what stands between them, every other piece, is
        # outside the strings.
        bare = body.split(b'"')[0::2]
        outside = sum(piece.count(b",") for piece in bare)
        if outside >= stop:
            return outside + 1  # at least: a value before each comma, and one after the last
        containers = sum(piece.count(b"[") + piece.count(b"{") for piece in bare)
        if outside + containers + 1 <= stop:
            return 0  # at most `stop`
    try:
        stack = [orjson.loads(body)]
    except orjson.JSONDecodeError:
        return 0  # the strict decoder says what is wrong with it
    count = 0
    while stack and count <= stop:
        value = stack.pop()
        count += 1
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def context_for(request: Request) -> Context:
    """The one context factory, for `/graphql` and the REST shim alike. What the operation
    did is noted in the request's state (`outcome`), for its access line and metrics. The
    context stays in that state until the request ends: what it read (a page's driver rows)
    is then freed once the answer is sent, not while it is made (`graph.execution`'s
    `PlannedExecutor.build_response`)."""
    state = request.state  # read once: each `request.state` is two Python calls
    principal: Principal = state.principal
    opened = resources(request.app)
    outcome = state.outcome = Outcome()
    context = state.context = build_context(
        opened.engine,
        opened.cursors,
        principal,
        state.request_id,
        state.snapshot,
        opened.limits,
        opened.controller_max_clusters,
        outcome,
        opened.clock,
        opened.stale_after,
    )
    return context


def graphql_status(payloads: Iterable[Mapping[str, Any]]) -> tuple[int, dict[str, str]]:
    """The HTTP status and extra headers of a /graphql answer made of `payloads` (one per
    operation of a batch): 200, as GraphQL over HTTP has it, except 503 with `Retry-After` when
    an error says the database is unavailable, so that clients and load balancers back off.
    """
    codes = {
        (error.get("extensions") or {}).get("code")
        for payload in payloads
        for error in payload.get("errors") or ()
    }
    return (503, RETRY_LATER) if Code.SERVICE_UNAVAILABLE in codes else (200, {})


class GraphQLView(GraphQL[Context, None]):
    """POST-only operations (GET only renders GraphiQL); HTTP-level refusals in GraphQL's shape;
    subscriptions over a websocket speaking graphql-transport-ws (`clusterql.live`)."""

    graphql_transport_ws_handler_class = LiveHandler
    websocket_adapter_class = TextWebSocketAdapter

    def __init__(self, schema: BaseSchema, *, graphiql_html: str | None = None) -> None:
        super().__init__(
            schema,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=LiveLimits().init_timeout_s),
        )
        self._graphiql_html = graphiql_html
        # `_answer_plainly` makes one JSON answer: not for answers delivered in increments
        self._plain = not schema.config.enable_experimental_incremental_execution
        self._graphiql_policy = (
            {"Content-Security-Policy": pages.content_security_policy(graphiql_html)}
            if graphiql_html is not None
            else {}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await super().__call__(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app_refuse(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method in ("GET", "HEAD"):
            # GET never runs an operation (no context, no token needed): it only shows GraphiQL.
            if "text/html" in request.headers.get("accept", ""):
                response = await self.render_graphql_ide(request)
            else:
                response = _error(405, "send GraphQL operations with POST", {"Allow": "POST"})
        else:
            try:
                response = await self._answer_plainly(request) or await self.run(request)
            except HTTPException as exc:
                response = _error(exc.status_code, exc.reason)
        await response(scope, receive, send)

    async def _answer_plainly(self, request: Request) -> Response | None:
        """The answer to what nearly every POST is (one operation as a JSON object, its fields
        of their types, no streamed answer asked for) without Strawberry's HTTP pipeline around
        the operation: the same steps as `run` takes for it (the strict body, the context, its
        `execute_single`, `process_result`, `create_response`), less what it does not need
        (the body decoded a second time, the branches for websockets, batches and streams).
        Measured in-process on PostgreSQL, a page without nodes cost about 0.2 ms more at
        `/graphql` than through REST; with this way and the plan's for the variables a client
        leaves out (`graph.variables`), measured together, it costs the same. None for
        anything else, and `run` answers it, its refusals its own."""
        if request.method != "POST" or not self._plain:
            return None
        if _media_type(request.headers.get("content-type")) != "application/json":
            return None
        if self._get_stream_transport_from_headers(request.headers) is not None:
            return None
        data = self.decode_json(await request.body())  # the request keeps it, for `run`
        if not isinstance(data, dict) or not data.keys() <= _REQUEST_FIELDS:
            return None
        query, variables = data.get("query"), data.get("variables")
        name, extensions = data.get("operationName"), data.get("extensions")
        if not (
            isinstance(query, str)
            and isinstance(variables, dict | None)
            and isinstance(name, str | None)
            and isinstance(extensions, dict | None)
        ):
            return None
        sub_response = await self.get_sub_response(request)
        result = await self.execute_single(
            request=request,
            request_adapter=self.request_adapter_class(request),
            sub_response=sub_response,
            context=await self.get_context(request, sub_response),
            root_value=None,  # this view has none (`GraphQL[Context, None]`)
            request_data=GraphQLRequestData(query, variables, name, extensions, "http"),
        )
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data, sub_response)

    @staticmethod
    async def app_refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await WebSocket(scope, receive, send).close(code=1008)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        if isinstance(request, WebSocket):
            opened = resources(request.app)
            return connection_context(opened.engine, opened.cursors)
        return context_for(request)

    def decode_json(self, data: str | bytes) -> object:
        raw = data.encode() if isinstance(data, str) else data
        values = json_values(raw)
        if values > MAX_JSON_VALUES:
            message = (
                f"the body holds more than {MAX_JSON_VALUES:,} JSON values; the limit is "
                f"{MAX_JSON_VALUES:,} (a report of 5,000 nodes holds about 60,000)"
            )
            raise HTTPException(400, message)
        try:
            return decode_json(raw)
        except RestError as exc:
            raise HTTPException(400, exc.message) from None

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        payloads = response_data if isinstance(response_data, list) else [response_data]
        status, headers = graphql_status(payloads)
        if status != 200:
            response.status_code = status
            response.headers.update(headers)
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST":
            if _media_type(request.content_type) != "application/json":
                raise HTTPException(
                    415, "send the operation as JSON, with Content-Type: application/json"
                )
            body = self.decode_json(await request.get_body())
            if not isinstance(body, dict):  # Strawberry answers `5` or `null` with a bare 500
                raise HTTPException(400, "the body must be a JSON object with a `query` field")
        return await super().parse_http_body(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        if self._graphiql_html is None:
            return _error(404, "GraphiQL is disabled")
        return HTMLResponse(self._graphiql_html, headers=self._graphiql_policy)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return GRAPHQL.refuse(status, message, headers)
