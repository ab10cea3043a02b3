"""metric points carry the wall-clock time they were recorded at

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

`seconds` is E1's training clock (zero at the end of step 1, evaluations excluded), so
started_at + seconds is not when a point happened. Points recorded before this revision
keep NULL here, and readers fall back to started_at + seconds for them.
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy): instant even on a file with millions of points.
    op.add_column("metric_points", sa.Column("wall", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("metric_points", "wall")
