"""API tokens: their secrets, who they stand for, and how they are stored and looked up.

A secret is `cql_` and 43 URL-safe characters (256 random bits), shown once when the token is
issued; only its SHA-256 digest is stored, and it is looked up on every request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.engine import write_transaction
from models.errors import Conflict, NotFound
from models.tables import api_tokens

_PREFIX = "cql_"
_SECRET_SHAPE = re.compile(r"cql_[A-Za-z0-9_-]{43}")


class Permission(StrEnum):
    """What an API token may do."""

    ADMIN = "Admin"
    CONTROLLER = "Controller"


@dataclass(slots=True, frozen=True)
class Principal:
    """The authenticated caller: one API token."""

    token_id: int
    name: str
    permissions: frozenset[Permission]

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(slots=True, frozen=True)
class TokenInfo:
    """What `token list` shows of a token (never its secret or digest)."""

    name: str
    permissions: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def new_secret() -> str:
    return _PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(text: str) -> bool:
    return _SECRET_SHAPE.fullmatch(text) is not None


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


async def issue(
    engine: AsyncEngine,
    name: str,
    permissions: Iterable[Permission],
    *,
    now: datetime | None = None,
    expires_at: datetime | None = None,
) -> str:
    """A new token, stored in a write transaction of its own; returns its secret, which only
    the caller ever sees. A taken name raises `Conflict`."""
    secret = new_secret()
    row = {
        "name": name,
        "permissions": sorted({str(p) for p in permissions}),
        "secret_digest": digest(secret),
        "created_at": now or datetime.now(UTC),
        "expires_at": expires_at,
    }
    try:
        async with write_transaction(engine) as conn:
            await conn.execute(insert(api_tokens).values(row))
    except IntegrityError as exc:
        raise Conflict(f"a token named {name!r} already exists") from exc
    return secret


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


async def active_ids(conn: AsyncConnection, token_ids: Iterable[int], now: datetime) -> set[int]:
    """Those of `token_ids` whose token is still live (neither revoked nor expired at `now`)."""
    wanted = sorted(set(token_ids))
    if not wanted:
        return set()
    query = select(api_tokens.c.id).where(
        api_tokens.c.id.in_(wanted),
        api_tokens.c.revoked_at.is_(None),
        or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
    )
    return {row[0] for row in await conn.execute(query)}
