"""Time origin and closure rule: a subject's randomized_on (day 0 when given); the
study setting closure_requires_drainage_recorded (default true, the FDA reading)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
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


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("randomized_on")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("closure_requires_drainage_recorded")
