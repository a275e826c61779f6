"""Authentication: every API request carries `Authorization: Bearer <secret>` (SPEC §3).

The token is looked up on every request, so a revoked or expired token fails on the very next
request in every process. Permissions are checked later, where data is resolved (graph layer).
The lookup is the first statement of the request's read snapshot (`models.snapshot`), which the
operation then goes on reading: one connection checkout and one transaction for the token and the
data. When the database is unavailable it answers 503 with `Retry-After`, like every later use
would.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from clusterql.database import resources
from clusterql.refusals import Boundary
from models import tokens
from models.engine import write_transaction
from models.faults import is_unavailable
from models.snapshot import Snapshot
from models.tokens import Principal, digest, looks_like_secret

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


async def authenticate(snapshot: Snapshot, header: str | None) -> Principal | None:
    """The caller of a request, looked up in the request's own snapshot (its first statement,
    so the token check and the data share one connection checkout and one transaction)."""
    secret = bearer_secret(header)
    if secret is None:
        return None
    now = datetime.now(UTC)
    found = await snapshot.run(lambda conn: tokens.find_active(conn, digest(secret), now))
    if found is None:
        return None
    principal, stale = found
    if stale:
        await _touch(snapshot.engine, principal, now)
    return principal


async def _touch(engine: AsyncEngine, principal: Principal, now: datetime) -> None:
    """Record the token's use (at most once a minute): bookkeeping, so a busy or absent
    database fails nothing."""
    try:
        async with write_transaction(engine) as conn:
            await tokens.touch(conn, principal.token_id, now)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("could not record last use of token %s", principal.name)


class AuthGate:
    """ASGI middleware: 401 for API requests without a live token; the caller goes in scope.

    `open_get`: GET and HEAD pass without a token (at `/graphql` they only render GraphiQL,
    which holds no data; GET operations are off).
    """

    def __init__(self, app: ASGIApp, boundary: Boundary, *, open_get: bool = False) -> None:
        self.app = app
        self.boundary = boundary
        self.open_get = open_get

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.open_get and scope["method"] in ("GET", "HEAD")):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization")
        snapshot = Snapshot(resources(scope["app"]).engine)
        try:
            try:
                principal = await authenticate(snapshot, raw.decode("latin-1") if raw else None)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                log.warning("database unavailable for the token lookup: %s", type(exc).__name__)
                await self.boundary.unavailable()(scope, receive, send)
                return
            if principal is None:
                refusal = self.boundary.refuse(401, UNAUTHENTICATED, CHALLENGE)
                await refusal(scope, receive, send)
                return
            state = scope.setdefault("state", {})
            state["principal"] = principal
            state["snapshot"] = snapshot  # the request's reads continue in it
            await self.app(scope, receive, send)
        finally:
            await snapshot.close()  # if the request did not close it already
