"""run ids are never reused; runs carry a change counter, a rerun link and their log's tail

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

SQLite hands out max(id) + 1 for a plain INTEGER PRIMARY KEY, so deleting the newest run
let the next launch take its id and a shared link silently showed another run.
AUTOINCREMENT needs the table rebuilt: the rows are copied with their ids, and
sqlite_sequence starts from the highest one. Foreign keys are switched off around the
rebuild by db.engine.upgrade_schema: dropping the old table would otherwise cascade to
every metric point (a PRAGMA here would come too late, inside the migration's transaction).
PostgreSQL's sequence never reuses ids, so there only the columns are added.
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PARTIAL_INDEXES = {"ix_runs_queued": ("id", "status = 'queued'"),
                   "ix_runs_running_heartbeat": ("heartbeat_at", "status = 'running'")}
def _new_columns() -> list[sa.Column]:
    """Fresh Column objects each time (a Column belongs to the one table it is added to)."""
    return [sa.Column("change_count", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("rerun_of", sa.Integer(), nullable=True),
            sa.Column("log_tail", sa.Text(), nullable=True)]


def _drop_partial_indexes() -> None:
    for name in PARTIAL_INDEXES:
        op.drop_index(name, table_name="runs")


def _create_partial_indexes() -> None:
    for name, (column, where) in PARTIAL_INDEXES.items():
        op.create_index(name, "runs", [column], sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def _rebuild_runs_on_sqlite(autoincrement: bool, change) -> None:
    """Rebuild the runs table (SQLite alters tables by copying them), keeping every row and id."""
    _drop_partial_indexes()
    with op.batch_alter_table("runs", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}) as batch:
        change(batch)
    _create_partial_indexes()


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        def add(batch):
            for column in _new_columns():
                batch.add_column(column)
        _rebuild_runs_on_sqlite(True, add)
    else:
        for column in _new_columns():
            op.add_column("runs", column)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        def drop(batch):
            for column in _new_columns():
                batch.drop_column(column.name)
        _rebuild_runs_on_sqlite(False, drop)
    else:
        for column in _new_columns():
            op.drop_column("runs", column.name)
