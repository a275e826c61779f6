"""API tokens: stored by the SHA-256 digest of their secret, looked up on every request."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from models.errors import Conflict, NotFound
from models.records import Permission, Principal, TokenInfo
from models.tables import api_tokens

# `last_used_at` is refreshed at most this often, so that reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_BY_DIGEST = select(
    api_tokens.c.id,
    api_tokens.c.name,
    api_tokens.c.permissions,
    api_tokens.c.last_used_at,
).where(
    api_tokens.c.secret_digest == bindparam("digest"),
    api_tokens.c.revoked_at.is_(None),
    or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > bindparam("now")),
)
_TOUCH = (
    update(api_tokens)
    .where(api_tokens.c.id == bindparam("token_id"))
    .values(last_used_at=bindparam("now"))
)


async def create(
    conn: AsyncConnection,
    *,
    name: str,
    permissions: frozenset[Permission],
    secret_digest: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> None:
    """Store a new token; a taken name raises `Conflict`."""
    try:
        await conn.execute(
            insert(api_tokens).values(
                name=name,
                permissions=sorted(str(p) for p in permissions),
                secret_digest=secret_digest,
                created_at=now,
                expires_at=expires_at,
            )
        )
    except IntegrityError as exc:
        raise Conflict(f"a token named {name!r} already exists") from exc


async def list_all(conn: AsyncConnection) -> list[TokenInfo]:
    """Every token, revoked and expired ones included, by name."""
    result = await conn.execute(
        select(
            api_tokens.c.name,
            api_tokens.c.permissions,
            api_tokens.c.created_at,
            api_tokens.c.expires_at,
            api_tokens.c.revoked_at,
            api_tokens.c.last_used_at,
        ).order_by(api_tokens.c.name)
    )
    return [TokenInfo(*row) for row in result]


async def revoke(conn: AsyncConnection, name: str, now: datetime) -> None:
    """Revoke the token named `name` (idempotent); an unknown name raises `NotFound`."""
    found = await conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name))
    if found.first() is None:
        raise NotFound(f"no token named {name!r}")
    await conn.execute(
        update(api_tokens)
        .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def find_active(
    conn: AsyncConnection, secret_digest: str, now: datetime
) -> tuple[Principal, bool] | None:
    """The caller behind a digest if its token is live, and whether `last_used_at` is stale."""
    row = (await conn.execute(_BY_DIGEST, {"digest": secret_digest, "now": now})).first()
    if row is None:
        return None
    token_id, name, permissions, last_used_at = row
    principal = Principal(
        token_id=token_id,
        name=name,
        permissions=frozenset(Permission(p) for p in permissions),
    )
    stale = last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION
    return principal, stale


async def touch(conn: AsyncConnection, token_id: int, now: datetime) -> None:
    """Record that the token was used at `now`."""
    await conn.execute(_TOUCH, {"token_id": token_id, "now": now})
