"""`clusterql token create | list | bind | revoke`: API tokens, whose secrets are shown once,
and the cluster names Controller tokens are bound to."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from clusterql.cli.common import CliError, database, settings_from, shown_time
from models import bindings, tokens
from models.bindings import Binding
from models.engine import read_transaction, write_transaction
from models.tokens import Permission, TokenInfo


async def _create(
    url: str,
    name: str,
    permissions: frozenset[Permission],
    binding: Binding,
    expires_in_days: int | None,
) -> str:
    now = datetime.now(UTC)
    expires = now + timedelta(days=expires_in_days) if expires_in_days else None
    async with database(url) as engine:
        return await tokens.issue(
            engine, name, permissions, now=now, expires_at=expires, binding=binding
        )


def create(args: argparse.Namespace) -> int:
    """Prints only the secret, so that `TOKEN=$(clusterql token create ...)` works."""
    url = settings_from(args).database_url
    permissions = frozenset(args.permission)
    binding = bindings.binding(args.cluster)
    tokens.check_binding(permissions, binding)  # before the database is opened or migrated
    print(asyncio.run(_create(url, args.name, permissions, binding, args.expires_in_days)))
    return 0


async def _list(url: str) -> list[TokenInfo]:
    async with database(url) as engine, read_transaction(engine) as conn:
        return await tokens.list_all(conn)


def table(found: Sequence[TokenInfo]) -> str:
    """Tokens as aligned plain text: readable in a terminal, easy to grep in a script."""
    rows = [("NAME", "PERMISSIONS", "CREATED", "EXPIRES", "REVOKED", "LAST USED", "CLUSTERS")]
    rows += [
        (
            t.name,
            ",".join(t.permissions),
            shown_time(t.created_at),
            shown_time(t.expires_at),
            shown_time(t.revoked_at),
            shown_time(t.last_used_at),
            shown_binding(t),
        )
        for t in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def shown_binding(token: TokenInfo) -> str:
    """The names and patterns a token may report: `*` for an Admin, `(none)` for a Controller
    token bound to nothing yet."""
    if Permission.ADMIN in token.permissions:
        return "*"
    if Permission.CONTROLLER not in token.permissions:
        return "-"
    return ",".join(token.binding) or "(none)"


def list_(args: argparse.Namespace) -> int:
    found = asyncio.run(_list(settings_from(args).database_url))
    print(table(found) if found else "no tokens yet: create one with `clusterql token create`")
    return 0


async def _bind(url: str, name: str, binding: Binding, add: bool) -> Binding:
    async with database(url) as engine, write_transaction(engine) as conn:
        return await tokens.bind(conn, name, binding, add=add)


def bind(args: argparse.Namespace) -> int:
    """Replace (or with `--add`, widen) a token's binding; from its next request."""
    if not args.cluster:
        raise CliError("give the names or patterns to bind with --cluster NAME_OR_GLOB")
    stored = asyncio.run(
        _bind(settings_from(args).database_url, args.name, bindings.binding(args.cluster), args.add)
    )
    print(f"token {args.name!r} is bound to {', '.join(stored.patterns)}")
    return 0


async def _revoke(url: str, name: str) -> None:
    async with database(url) as engine, write_transaction(engine) as conn:
        await tokens.revoke(conn, name, datetime.now(UTC))


def revoke(args: argparse.Namespace) -> int:
    asyncio.run(_revoke(settings_from(args).database_url, args.name))
    print(f"token {args.name!r} revoked")
    return 0
