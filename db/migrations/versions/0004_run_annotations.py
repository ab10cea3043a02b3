"""runs carry annotations: tags, notes and a star (the name was already its own column)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Plain ADD COLUMNs with defaults on both databases: no table copy, so every row (and on
SQLite its AUTOINCREMENT id sequence) stays as it is, and existing runs read as untagged,
without notes, not starred. Tags are stored normalised and space-separated (see db.queue).
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _new_columns() -> list[sa.Column]:
    """Fresh Column objects each time (a Column belongs to the one table it is added to)."""
    return [sa.Column("tags", sa.Text(), nullable=False, server_default=""),
            sa.Column("notes", sa.Text(), nullable=True),
            sa.Column("starred", sa.Boolean(), nullable=False, server_default=sa.false())]


def upgrade() -> None:
    for column in _new_columns():
        op.add_column("runs", column)


def downgrade() -> None:
    for column in reversed(_new_columns()):
        op.drop_column("runs", column.name)
