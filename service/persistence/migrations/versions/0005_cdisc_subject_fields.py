"""Optional subject fields for CDISC DM (branch cdisc): sex, country (ISO 3166 alpha-3),
age in years and birth date, and the side of the index leg (LEFT or RIGHT, from which
TU/PR laterality follow). Admin-set, never required by the upload path.

Revision ID: 0005_cdisc
Revises: 0005_stats
Create Date: 2026-12-07 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cdisc"
down_revision = "0005_stats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sex", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("country", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("age_years", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("index_leg_side", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        for column in ("index_leg_side", "birth_date", "age_years", "country", "sex"):
            batch_op.drop_column(column)
