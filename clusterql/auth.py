"""Authentication: every API request carries `Authorization: Bearer <secret>` (SPEC §3).

The token is looked up on every request, so a revoked or expired token fails on the very next
request in every process. Permissions are checked later, where data is resolved (graph layer).
The lookup is the first use of the database in a request: when the database is unavailable it
answers 503 with `Retry-After`, like every later use would.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from clusterql.tokens import digest, looks_like_secret
from models import tokens as tokens_db
from models.engine import read_transaction, write_transaction
from models.faults import is_unavailable
from models.records import Principal
from rest_shim.problems import error_response, unavailable

log = logging.getLogger("clusterql.auth")

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clusterql"'}
# One message for every cause, so that a caller cannot probe which tokens exist.
UNAUTHENTICATED = "authentication required: send Authorization: Bearer <token> with a valid token"


def bearer_secret(header: str | None) -> str | None:
    """The secret of a well-formed `Bearer` header, else None."""
    if not header:
        return None
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not looks_like_secret(secret):
        return None
    return secret


async def authenticate(engine: AsyncEngine, header: str | None) -> Principal | None:
    secret = bearer_secret(header)
    if secret is None:
        return None
    now = datetime.now(UTC)
    async with read_transaction(engine) as conn:
        found = await tokens_db.find_active(conn, digest(secret), now)
    if found is None:
        return None
    principal, stale = found
    if stale:
        try:
            async with write_transaction(engine) as conn:
                await tokens_db.touch(conn, principal.token_id, now)
        except Exception as exc:  # bookkeeping only: a busy or absent database fails nothing
            if not is_unavailable(exc):
                raise
            log.warning("could not record last use of token %s", principal.name)
    return principal


class AuthGate:
    """ASGI middleware: 401 for API requests without a live token; the caller goes in scope."""

    def __init__(
        self,
        app: ASGIApp,
        protected: tuple[str, ...],
        open_get: tuple[str, ...],
        graphql: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.protected = protected
        self.open_get = open_get  # GET here only renders GraphiQL (GET operations are off)
        self.graphql = graphql  # answered 503 in GraphQL's shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(self.protected)
            or (scope["method"] in ("GET", "HEAD") and path in self.open_get)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization")
        engine: AsyncEngine = scope["app"].state.engine
        try:
            principal = await authenticate(engine, raw.decode("latin-1") if raw else None)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("database unavailable for the token lookup: %s", type(exc).__name__)
            await unavailable(graphql=path in self.graphql)(scope, receive, send)
            return
        if principal is None:
            await error_response(401, UNAUTHENTICATED, CHALLENGE)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
