"""The app factory: routes, middleware and the engine's lifetime, from one `Settings`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute

from clusterql import docs, graphiql, metrics, openapi, pages, refusals
from clusterql.access import Access, Watch, route_templates
from clusterql.api_gate import ApiGate
from clusterql.cli.parser import installed_version
from clusterql.database import Resources, current_database, resources
from clusterql.edge import Edge
from clusterql.graphql_view import GraphQLView, context_for
from clusterql.live import Live
from clusterql.overload import InFlight
from clusterql.rate_limit import RateLimiter
from clusterql.refusals import GRAPHQL, REST, Boundary
from clusterql.settings import Settings
from graph.context import Clock, utc_now
from graph.cursors import CursorCodec
from graph.schema import schema
from models import service_keys
from models.engine import ping
from models.faults import is_unavailable
from models.tokens import Permission
from rest_shim.routes import PREFIX, RestShim

YOUNG_GENERATION = 10_000  # objects allocated and alive before a collection (`create_app`)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Paths outside both APIs (unknown ones among them) answer in the REST contract's shape."""
    assert isinstance(exc, HTTPException)
    return refusals.refusal_for_http_error(REST, request.scope, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return refusals.refusal_for_exception(REST, request.scope, exc)


async def _healthz(request: Request) -> Response:
    """The process is alive (no database access)."""
    return Response("ok\n", media_type="text/plain")


async def _readyz(request: Request) -> Response:
    """The database is reachable: load balancers send traffic here only while this is 200."""
    try:
        await ping(resources(request.app).engine)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return REST.unavailable()
    return Response("ready\n", media_type="text/plain")


async def _metrics(request: Request) -> Response:
    """The metrics of every process (`clusterql.metrics`), for a token with Admin."""
    principal = request.scope.get("state", {}).get("principal")
    if principal is not None and not principal.may(Permission.ADMIN):
        message = "reading /metrics needs a token with the Admin permission"
        return REST.refuse(403, message)
    return metrics.response(request)


def _metrics_route(access: str, limiter: RateLimiter) -> list[Route]:
    """`GET /metrics` as `CLUSTERQL_METRICS` says: behind an Admin token (the default), open to
    anyone who reaches the port (`public`), or absent (`off`). The scrape is not held to the
    in-flight bound or the token's rate: it is what shows an overload."""
    if access == "off":
        return []
    if access == "public":
        return [Route("/metrics", metrics.response, methods=["GET"])]
    gate = Middleware(ApiGate, boundary=REST, limiter=limiter, throttle_tokens=False)
    return [Route("/metrics", _metrics, methods=["GET"], middleware=[gate])]


def _boundary(
    boundary: Boundary,
    max_body_bytes: int,
    limiter: RateLimiter,
    in_flight: InFlight,
    *,
    open_get: bool = False,
) -> list[Middleware]:
    """What every request to one API goes through (`clusterql.api_gate`), each refusal in that
    API's shape. The rate limiter and the in-flight count are the app's, shared by both APIs."""
    return [
        Middleware(
            ApiGate,
            boundary=boundary,
            limiter=limiter,
            in_flight=in_flight,
            max_body_bytes=max_body_bytes,
            open_get=open_get,
        )
    ]


def create_app(
    settings: Settings | None = None, *, clock: Clock = utc_now, freeze_startup: bool = False
) -> Starlette:
    """The app; `clock` is what it reads the time from (tests pass one they move).

    With `freeze_startup` (what `clusterql serve` runs, `serving_app`), the end of the startup
    hands every object made so far (modules, the schema, the engine) to `gc.freeze()`: the
    garbage collector then no longer walks them. A page of 100 clusters with nodes makes about
    5,000 objects the collector tracks, which trigger its collections; a full one walked the
    140,000 objects of startup each time, about 4 ms a page on average, and 1 ms with them
    frozen.

    It also raises the young generation's threshold from Python's 700 to `YOUNG_GENERATION`
    objects. A request leaves nothing in reference cycles (`tests/clusterql/
    test_request_garbage.py`): what it made is freed when it ends, and a collection finds
    only the objects of requests still running. A page of 100 clusters with 2,000 nodes holds
    between 2,000 and 3,000 tracked objects at once (measured by the collector's own count:
    some collections with a threshold of 2,000, none in 50 pages with 3,000): with 700, about
    four collections a page walked them (1.1 to 1.6 ms of a 20 ms page in-process), none with the
    threshold above what it holds. Garbage in cycles (an exception and its traceback) waits
    for the next collection: at most that many objects. Tests build many apps in one process
    and leave the collector alone."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        options = settings.engine_options()
        url = settings.database_url
        async with current_database(url, options, migrate=settings.migrate) as engine:
            cursors = CursorCodec(await service_keys.get_or_create(engine, "cursor"))
            async with Live(engine, settings.live_limits()).running() as live:
                app.state.resources = Resources(
                    engine,
                    cursors,
                    settings.operation_limits(),
                    settings.controller_max_clusters,
                    clock,
                    settings.stale_after,
                    live,
                )
                if counting:
                    metrics.watch(engine)
                if freeze_startup:
                    gc.collect()  # garbage is not frozen: only what startup keeps
                    gc.freeze()
                    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])
                try:
                    yield
                finally:
                    if counting:
                        metrics.leaving()

    graphql = GraphQLView(schema, graphiql_html=graphiql.page() if settings.graphiql else None)
    shim = RestShim(schema, context_for)
    limiter = RateLimiter(settings.rate_limits())
    in_flight = InFlight(settings.max_in_flight)
    counting = settings.metrics != "off"
    routes = [
        Mount(
            PREFIX,
            routes=shim.routes(),
            middleware=_boundary(REST, settings.max_body_bytes, limiter, in_flight),
        ),
        Route(
            "/graphql",
            graphql,
            middleware=_boundary(
                GRAPHQL, settings.max_graphql_body_bytes, limiter, in_flight, open_get=True
            ),
        ),
        # The same view, for its websocket (the boundary's middlewares are HTTP's: the
        # websocket authenticates in its connection_init, clusterql.live).
        WebSocketRoute("/graphql", graphql),
        Route(openapi.OPENAPI_URL, openapi.endpoint(settings.max_body_bytes, installed_version())),
        Route(docs.DOCS_URL, docs.endpoint()),
        Route("/healthz", _healthz),
        Route("/readyz", _readyz),
        *_metrics_route(settings.metrics, limiter),
        Mount(pages.STATIC_URL, pages.vendor_files()),
    ]
    watch = Watch(route_templates(routes), "/graphql", counting)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Edge, access=Access(watch))],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.rate_limiter = limiter  # its tables, for those who watch them (tests)
    return app


def serving_app() -> Starlette:
    """The app `clusterql serve` runs in each uvicorn worker (`create_app`, `freeze_startup`)."""
    return create_app(freeze_startup=True)
