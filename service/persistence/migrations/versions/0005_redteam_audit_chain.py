"""Audit chain: audit_log.prev_hash and hash (a SHA-256 hash chain), audit_head (the
chain's length and last hash; the row appends lock). Entries already there are chained in id order.

Revision ID: 0005_redteam
Revises: 0005_cdisc
Create Date: 2026-12-07 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_redteam"
down_revision = "0005_cdisc"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = ("audit_log_no_update", "audit_log_no_delete")
SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]


def _chain_existing(conn: sa.Connection) -> str:
    """Hash the entries already in the log, in id order (the append-only triggers are
    off meanwhile); returns the last hash."""
    from service.persistence.auditchain import GENESIS, entry_hash
    from service.persistence.orm import AuditEntry

    table = AuditEntry.__table__
    previous = GENESIS
    for row in conn.execute(sa.select(table).order_by(table.c.id)).mappings().all():
        entry = AuditEntry(**{k: v for k, v in row.items() if k not in ("prev_hash", "hash")})
        digest = entry_hash(previous, entry)
        conn.execute(
            table.update().where(table.c.id == row["id"]).values(prev_hash=previous, hash=digest)
        )
        previous = digest
    return previous


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if sqlite:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    last_hash = _chain_existing(conn)
    if sqlite:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)
    else:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    count = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() or 0
    conn.execute(
        sa.text("INSERT INTO audit_head (id, entries, hash) VALUES (1, :n, :h)"),
        {"n": count, "h": last_hash},
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_table("audit_head")
    if sqlite:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
    if sqlite:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)
