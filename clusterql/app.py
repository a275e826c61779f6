"""The app factory: routes, middleware and the engine's lifetime, from one `Settings`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from clusterql import graphiql
from clusterql.auth import AuthGate
from clusterql.body_limit import BodyLimit
from clusterql.graphql_view import GraphQLView, context_for
from clusterql.request_id import RequestId
from clusterql.settings import Settings
from graph.cursors import CursorCodec
from graph.schema import schema
from models import migrations, service_keys
from models.engine import create_engine, create_schema, ping
from models.faults import is_unavailable
from rest_shim.problems import error_response, unavailable
from rest_shim.routes import PREFIX, RestShim

log = logging.getLogger("clusterql.app")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: f"no such endpoint: {request.method} {request.url.path}",
        405: f"method {request.method} is not allowed here",
    }
    return error_response(
        exc.status_code, messages.get(exc.status_code, str(exc.detail)), exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    rid = request.scope.get("state", {}).get("request_id")
    if is_unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__, extra={"request_id": rid})
        return unavailable(graphql=request.url.path == "/graphql")
    log.error("unhandled exception", exc_info=exc)
    return error_response(500, f"internal server error (request id {rid})")


async def _healthz(request: Request) -> Response:
    """The process is alive (no database access)."""
    return Response("ok\n", media_type="text/plain")


async def _readyz(request: Request) -> Response:
    """The database is reachable: load balancers send traffic here only while this is 200."""
    try:
        await ping(request.app.state.engine)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return unavailable()
    return Response("ready\n", media_type="text/plain")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, settings.engine_options())
        if settings.migrate:
            await create_schema(engine)
        elif waiting := await migrations.pending(engine):
            await engine.dispose()
            raise RuntimeError(
                f"the database lacks schema migrations ({', '.join(waiting)}): "
                "run `clusterql db upgrade` first (or start with CLUSTERQL_MIGRATE=true)"
            )
        app.state.engine = engine
        app.state.cursors = CursorCodec(await service_keys.get_or_create(engine, "cursor"))
        try:
            yield
        finally:
            await engine.dispose()

    graphql = GraphQLView(schema, graphiql_html=graphiql.page() if settings.graphiql else None)
    shim = RestShim(schema, context_for)
    app = Starlette(
        routes=[
            *shim.routes(),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", _healthz),
            Route("/readyz", _readyz),
            Mount(graphiql.STATIC_URL, graphiql.vendor_files()),
        ],
        middleware=[
            Middleware(RequestId),
            Middleware(
                BodyLimit,
                max_bytes=settings.max_body_bytes,
                per_path={"/graphql": settings.max_graphql_body_bytes},
            ),
            Middleware(
                AuthGate,
                protected=(PREFIX, "/graphql"),
                open_get=("/graphql",),
                graphql=("/graphql",),
            ),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    return app
