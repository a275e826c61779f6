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

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The rows as this revision counted them (0005 counts them per cell since).
REBUILD_SQL = """
INSERT INTO fleet_counts (kind, key, count)
SELECT 'provider', provider, count(*) FROM clusters WHERE removed_at IS NULL GROUP BY provider
UNION ALL
SELECT 'controller_status', controller_status, count(*) FROM clusters WHERE removed_at IS NULL
  GROUP BY controller_status
UNION ALL
SELECT 'node_status', status, count(*) FROM nodes GROUP BY status
UNION ALL
SELECT 'sensor', CASE WHEN sensor_installed THEN 'with' ELSE 'without' END, count(*) FROM nodes
  GROUP BY sensor_installed
UNION ALL
SELECT 'sensor_version', sensor_version, count(*) FROM nodes WHERE sensor_installed
  GROUP BY sensor_version
"""


def upgrade() -> None:
    # A database made before migrations by `create_all` of the models has the table already
    # (empty, in the shape of its day): it is adopted at 0001 and made again here.
    if "fleet_counts" in sa.inspect(op.get_bind()).get_table_names():
        op.drop_table("fleet_counts")
    _create()
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
