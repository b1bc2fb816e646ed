"""Time origin, closure rule, subject events: a subject's randomized_on (day 0 when
given); the study setting closure_requires_drainage_recorded (default true, the FDA
reading); subject_events (death, amputations, …; voidable, never deleted)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "closure_requires_drainage_recorded",
                sa.Boolean(),
                nullable=False,
                server_default=sa.true(),
            )
        )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("randomized_on", sa.Date(), nullable=True))
    op.create_table(
        "subject_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("leg", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_subject_events_subject_id", "subject_events", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_subject_events_subject_id", table_name="subject_events")
    op.drop_table("subject_events")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("randomized_on")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("closure_requires_drainage_recorded")
