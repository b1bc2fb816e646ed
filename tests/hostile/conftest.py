"""One real app (SQLite, bundled model) shared by the hostile tests: the fixtures of
tests/api/conftest.py, with the database narrowed to SQLite (the PostgreSQL path of
every route is exercised by tests/api)."""

from __future__ import annotations

import pytest

from tests.api.conftest import service as service  # noqa: F401 - re-exported fixture


@pytest.fixture(scope="session")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('hostile-db') / 'woundscope.db'}"
