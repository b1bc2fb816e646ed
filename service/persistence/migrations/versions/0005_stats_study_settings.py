"""Study settings for the analysis (issue 26): the week-4 PAR window
(par_week4_window_days, default 7), the control arm (control_arm) and the visit
schedule (visit_schedule, JSON; null: fortnightly ± 7 days)

Revision ID: 0005_stats
Revises: 0004
Create Date: 2026-12-07 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_stats"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("par_week4_window_days", sa.Integer(), nullable=False, server_default="7")
        )
        batch_op.add_column(sa.Column("control_arm", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("visit_schedule", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("visit_schedule")
        batch_op.drop_column("control_arm")
        batch_op.drop_column("par_week4_window_days")
