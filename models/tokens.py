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

import orjson
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.bindings import NOTHING, Binding
from models.driver_statements import INSTANTS, codec, fetch_statement
from models.engine import write_transaction
from models.errors import Conflict, InvalidInput, NotFound
from models.limits import MAX_TOKEN_NAME
from models.tables import api_tokens
from models.text import checked

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
    binding: Binding = NOTHING  # the cluster names a Controller token may report

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    def may_report(self, cluster_name: str) -> bool:
        """An Admin reports any cluster; a Controller token the names of its binding."""
        if self.may(Permission.ADMIN):
            return True
        return self.may(Permission.CONTROLLER) and self.binding.covers(cluster_name)


@dataclass(slots=True, frozen=True)
class TokenInfo:
    """What `token list` shows of a token (never its secret or digest)."""

    name: str
    permissions: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    binding: list[str]


def needs_binding(permissions: Iterable[Permission]) -> bool:
    """Whether a token with `permissions` is bound to cluster names: only Controller ones are
    (an Admin reports any cluster)."""
    return set(permissions) == {Permission.CONTROLLER}


def check_binding(permissions: Iterable[Permission], binding: Binding) -> None:
    """`InvalidInput` unless a token with `permissions` may have `binding` (SPEC §3, §9)."""
    if needs_binding(permissions) and not binding.patterns:
        raise InvalidInput(
            "a Controller token is bound to the clusters it reports: give at least one "
            "--cluster NAME_OR_GLOB (e.g. --cluster prod-eu or --cluster 'sim-*')"
        )
    if not needs_binding(permissions) and binding.patterns:
        raise InvalidInput(
            "--cluster binds tokens with only the Controller permission; an Admin token "
            "reports any cluster"
        )


def new_secret() -> str:
    return _PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(text: str) -> bool:
    return _SECRET_SHAPE.fullmatch(text) is not None


_SECRET_LIKE = re.compile(r"cql_[A-Za-z0-9_-]*")
REDACTED = "[secret redacted]"


def redacted(text: str) -> str:
    """`text` with everything that looks like a secret, or a piece of one, taken out."""
    return _SECRET_LIKE.sub(REDACTED, text) if _PREFIX in text else text


# `last_used_at` is refreshed at most this often, so that reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_BY_DIGEST = select(
    api_tokens.c.id,
    api_tokens.c.name,
    api_tokens.c.permissions,
    api_tokens.c.last_used_at,
    api_tokens.c.binding,
).where(
    api_tokens.c.secret_digest == bindparam("digest"),
    api_tokens.c.revoked_at.is_(None),
    or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > bindparam("now")),
)
_TOKEN_CODECS = {
    dialect: codec(
        dialect,
        tuple,
        [api_tokens.c[name] for name in ("id", "name", "permissions", "last_used_at", "binding")],
        ("last_used_at",),
        {"permissions": orjson.loads, "binding": orjson.loads} if dialect == "sqlite" else None,
    )
    for dialect in INSTANTS
}
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
    binding: Binding = NOTHING,
) -> str:
    """A new token, stored in a write transaction of its own; returns its secret, which only
    the caller ever sees. A taken name raises `Conflict`; one the text rules refuse, a
    Controller token without a binding, or another with one, `InvalidInput`."""
    [secret] = await issue_each(
        engine, [(name, permissions, binding)], now=now, expires_at=expires_at
    )
    return secret


async def issue_each(
    engine: AsyncEngine,
    specs: Iterable[tuple[str, Iterable[Permission], Binding]],
    *,
    now: datetime | None = None,
    expires_at: datetime | None = None,
) -> list[str]:
    """New tokens (name, permissions, binding), in a write transaction of their own; their
    secrets in order."""
    specs = list(specs)
    try:
        async with write_transaction(engine) as conn:
            issued = await insert_each(conn, specs, now=now, expires_at=expires_at)
    except IntegrityError as exc:
        raise Conflict(f"a token named {_names(specs)} already exists") from exc
    return [secret for _, secret in issued]


def _names(specs: Iterable[tuple[str, Iterable[Permission], Binding]]) -> str:
    return ", ".join(repr(name) for name, _, _ in list(specs)[:3])


async def insert_each(
    conn: AsyncConnection,
    specs: Iterable[tuple[str, Iterable[Permission], Binding]],
    *,
    now: datetime | None = None,
    expires_at: datetime | None = None,
) -> list[tuple[int, str]]:
    """New tokens in the caller's transaction, in one statement: (id, secret) of each, in order."""
    rows, secrets_ = [], []
    for name, permissions, binding in specs:
        name = checked("a token name", name, longest=MAX_TOKEN_NAME)
        permissions = set(permissions)
        check_binding(permissions, binding)
        secret = new_secret()
        secrets_.append(secret)
        rows.append(
            {
                "name": name,
                "permissions": sorted(str(p) for p in permissions),
                "secret_digest": digest(secret),
                "created_at": now or datetime.now(UTC),
                "expires_at": expires_at,
                "binding": list(binding.patterns),
            }
        )
    if not rows:
        return []
    inserted = await conn.execute(
        insert(api_tokens).returning(api_tokens.c.id, sort_by_parameter_order=True), rows
    )
    return [(row[0], secret) for row, secret in zip(inserted, secrets_, strict=True)]


async def bind(conn: AsyncConnection, name: str, binding: Binding, *, add: bool = False) -> Binding:
    """Bind the token named `name` to `binding` (or, with `add`, to its own and `binding`'s
    patterns); returns the binding stored. Takes effect from the token's next request."""
    found = (
        await conn.execute(
            select(api_tokens.c.permissions, api_tokens.c.binding)
            .where(api_tokens.c.name == name)
            .with_for_update()
        )
    ).first()
    if found is None:
        raise NotFound(f"no token named {name!r}")
    permissions = {Permission(p) for p in found[0]}
    if add:
        binding = Binding(tuple(dict.fromkeys([*found[1], *binding.patterns])))
    check_binding(permissions, binding)
    await conn.execute(
        update(api_tokens).where(api_tokens.c.name == name).values(binding=list(binding.patterns))
    )
    return binding


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
            api_tokens.c.binding,
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
    """The caller behind a digest if its token is live, and whether `last_used_at` is stale.
    The first read of a request, by the driver in the transaction SQLAlchemy began (its BEGIN
    sent with this statement on SQLite, just before it on PostgreSQL), else through SQLAlchemy
    (`models.driver_statements.fetch` says when)."""
    given = {"digest": secret_digest, "now": now}
    found = await fetch_statement(conn, _BY_DIGEST, given)
    if found is None:
        row = (await conn.execute(_BY_DIGEST, given)).first()
    else:
        row = _TOKEN_CODECS[conn.dialect.name].decode(found[0]) if found else None
    if row is None:
        return None
    token_id, name, permissions, last_used_at, patterns = row
    principal = Principal(
        token_id=token_id,
        name=name,
        permissions=frozenset(Permission(p) for p in permissions),
        binding=Binding(tuple(patterns)) if patterns else NOTHING,
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
