"""The migrations and the ORM describe the same schema: after ``upgrade`` to head,
Alembic's autogenerate finds nothing to add, drop or change (a column added to
``orm.py`` without a migration, or the other way round, fails here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.persistence.db import make_engine, upgrade
from service.persistence.orm import Base


def _drift(url: str) -> list:
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_sqlite_schema_after_upgrade_matches_the_orm(tmp_path: Path) -> None:
    assert _drift(f"sqlite:///{tmp_path / 'db.sqlite3'}") == []


@pytest.mark.postgres
def test_postgres_schema_after_upgrade_matches_the_orm(postgres_url: str) -> None:
    from tests.api.conftest import create_postgres_database, drop_postgres_database

    url = create_postgres_database(postgres_url)
    try:
        assert _drift(url) == []
    finally:
        drop_postgres_database(url)
