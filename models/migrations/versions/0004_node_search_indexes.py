"""node search indexes

`nodes(filter:)` counts by status, sensor and sensor version on an index, and finds an internal
address in id order (models/node_search.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
COLUMNS = ("status", "sensor_installed", "sensor_version", "internal_ip")


def upgrade() -> None:
    for column in COLUMNS:
        op.create_index(f"ix_nodes_{column}_id", "nodes", [column, "id"], if_not_exists=True)


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_nodes_{column}_id", table_name="nodes")
