"""bound controller tokens

Adds `api_tokens.binding` (the cluster names and glob patterns a Controller token may report,
SPEC §3) and an index for the live clusters each token holds. Every existing token with only
the Controller permission is bound to the names of the live clusters it registered, each as an
exact name, so it goes on reporting them and nothing else; one that registered none is bound
to nothing until an Admin binds it (`clusterql token bind`). Written by hand.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:55:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_LIVE = sa.text("removed_at IS NULL")


def upgrade() -> None:
    connection = op.get_bind()
    columns = {c["name"] for c in sa.inspect(connection).get_columns("api_tokens")}
    # A database made before migrations by newer models already has the column (adoption).
    if "binding" not in columns:
        # A constant default: SQLite adds the column in place, without rebuilding the table.
        op.add_column(
            "api_tokens",
            sa.Column("binding", _JSON, server_default=sa.text("'[]'"), nullable=False),
        )
    indexes = {i["name"] for i in sa.inspect(connection).get_indexes("clusters")}
    if "ix_clusters_live_owner_token_id" not in indexes:
        op.create_index(
            "ix_clusters_live_owner_token_id",
            "clusters",
            ["owner_token_id"],
            unique=False,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )
    _bind_controllers_to_their_clusters(connection)


def _bind_controllers_to_their_clusters(connection: sa.Connection) -> None:
    tokens = sa.table(
        "api_tokens", sa.column("id"), sa.column("permissions", _JSON), sa.column("binding", _JSON)
    )
    clusters = sa.table(
        "clusters", sa.column("name"), sa.column("owner_token_id"), sa.column("removed_at")
    )
    for token_id, permissions in connection.execute(sa.select(tokens.c.id, tokens.c.permissions)):
        if isinstance(permissions, str):  # a driver that hands JSON back as text
            permissions = json.loads(permissions)
        if set(permissions) != {"Controller"}:
            continue  # an Admin reports any cluster: it needs no binding
        names = connection.execute(
            sa.select(clusters.c.name)
            .where(clusters.c.owner_token_id == token_id, clusters.c.removed_at.is_(None))
            .order_by(clusters.c.name)
        ).scalars()
        binding = [_literal(name) for name in names]
        connection.execute(sa.update(tokens).where(tokens.c.id == token_id).values(binding=binding))


def _literal(name: str) -> str:
    # models.bindings.literal, frozen here: a migration does not follow later code.
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def downgrade() -> None:
    op.drop_index("ix_clusters_live_owner_token_id", table_name="clusters")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("binding")
