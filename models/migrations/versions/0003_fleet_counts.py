"""fleet summary rows

The counts `fleetSummary` reads without a filter (models/fleet_counts.py), filled from the rows
of the database being migrated; from here on every write keeps them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.fleet_counts import REBUILD_SQL

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database made before migrations by `create_all` of these models has the table already
    # (empty): it is adopted at 0001 and filled here like any other.
    if "fleet_counts" not in sa.inspect(op.get_bind()).get_table_names():
        _create()
    op.execute("DELETE FROM fleet_counts")
    op.execute(REBUILD_SQL)


def _create() -> None:
    op.create_table(
        "fleet_counts",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=253), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )


def downgrade() -> None:
    op.drop_table("fleet_counts")
