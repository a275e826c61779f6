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
from starlette.responses import Response
from starlette.types import Scope

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


async def caller(boundary: Boundary, scope: Scope, snapshot: Snapshot) -> Principal | Response:
    """The caller of an API request (its token looked up in `snapshot`), or the refusal to
    answer: 401 without a live token, 503 when the database cannot say."""
    raw = dict(scope["headers"]).get(b"authorization")
    try:
        principal = await authenticate(snapshot, raw.decode("latin-1") if raw else None)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("database unavailable for the token lookup: %s", type(exc).__name__)
        return boundary.unavailable()
    if principal is None:
        return boundary.refuse(401, UNAUTHENTICATED, CHALLENGE)
    return principal
