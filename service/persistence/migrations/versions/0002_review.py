"""Clinician review: the study's review policy; who accepted which measurement, and when

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review", sa.String(length=16), nullable=False, server_default="flagged")
        )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accepted_measurement_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("accepted_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_column("accepted_at")
        batch_op.drop_column("accepted_by")
        batch_op.drop_column("accepted_measurement_id")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("review")
