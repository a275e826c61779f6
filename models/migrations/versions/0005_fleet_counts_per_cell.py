"""fleet summary rows per provider and controller status

The summary rows are kept per cell of provider and controller status, so that `fleetSummary`
filtered by providers or controller statuses adds up cells instead of counting every row
(models/fleet_counts.py); counted afresh from the rows of the database being migrated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rows as this revision counts them (models.fleet_counts.REBUILD_SQL, frozen here).
REBUILD_SQL = """
INSERT INTO fleet_counts (provider, controller_status, kind, key, count)
SELECT provider, controller_status, 'clusters', '', count(*) FROM clusters
  WHERE removed_at IS NULL GROUP BY provider, controller_status
UNION ALL
SELECT c.provider, c.controller_status, 'node_status', n.status, count(*)
  FROM nodes n JOIN clusters c ON c.id = n.cluster_id WHERE c.removed_at IS NULL
  GROUP BY c.provider, c.controller_status, n.status
UNION ALL
SELECT c.provider, c.controller_status, 'sensor',
  CASE WHEN n.sensor_installed THEN 'with' ELSE 'without' END, count(*)
  FROM nodes n JOIN clusters c ON c.id = n.cluster_id WHERE c.removed_at IS NULL
  GROUP BY c.provider, c.controller_status, n.sensor_installed
UNION ALL
SELECT c.provider, c.controller_status, 'sensor_version', n.sensor_version, count(*)
  FROM nodes n JOIN clusters c ON c.id = n.cluster_id
  WHERE c.removed_at IS NULL AND n.sensor_installed
  GROUP BY c.provider, c.controller_status, n.sensor_version
"""


def upgrade() -> None:
    op.drop_table("fleet_counts")
    op.create_table(
        "fleet_counts",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("controller_status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=253), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "controller_status", "kind", "key"),
    )
    op.execute(REBUILD_SQL)


def downgrade() -> None:
    op.rename_table("fleet_counts", "fleet_counts_cells")
    op.create_table(
        "fleet_counts",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=253), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )
    # 0004's rows are the sums of the cells' over either coordinate, or over both
    op.execute("""
INSERT INTO fleet_counts (kind, key, count)
SELECT 'provider', provider, sum(count) FROM fleet_counts_cells WHERE kind = 'clusters'
  GROUP BY provider
UNION ALL
SELECT 'controller_status', controller_status, sum(count) FROM fleet_counts_cells
  WHERE kind = 'clusters' GROUP BY controller_status
UNION ALL
SELECT kind, key, sum(count) FROM fleet_counts_cells WHERE kind <> 'clusters' GROUP BY kind, key
""")
    op.drop_table("fleet_counts_cells")
