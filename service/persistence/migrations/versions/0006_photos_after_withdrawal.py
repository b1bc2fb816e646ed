"""The study setting photos_after_withdrawal (issue 26): a photo dated after the
subject's withdrawal or loss to follow-up is refused ("refuse", the default) or stored,
never counted ("record")

Revision ID: 0006_withdrawal
Revises: 0005_engine
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_withdrawal"
down_revision = "0005_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "photos_after_withdrawal",
                sa.String(length=16),
                nullable=False,
                server_default="refuse",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("photos_after_withdrawal")
