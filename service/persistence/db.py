"""Engine, sessions and schema migrations (Alembic only, never ``create_all``).

The embedded SQLite default migrates itself on first use; an external database is
migrated only by ``woundscope db upgrade`` and refused while it is behind the code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.core.errors import DatabaseBehind

PACKAGE_DIR = Path(__file__).resolve().parent


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config(str(PACKAGE_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def private_sqlite_file(path: Path) -> None:
    """Create the database file (and its folder) readable by this user only: SQLite
    gives its -wal and -shm files the database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def make_engine(url: str) -> Engine:
    """An engine; SQLite files get WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_sqlite_file(Path(parsed.database).expanduser())
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            # SQLite connections are cheap; a small pool ran dry under bursts.
            pool_size=32,
            max_overflow=32,
            pool_timeout=10,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=10)


@lru_cache(maxsize=1)
def _head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def head_revision(url: str = "") -> str | None:
    """The schema revision this code needs (the same for every database)."""
    return _head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (``woundscope db upgrade``)."""
    from alembic import command

    make_engine(url).dispose()  # creates the SQLite file's folder
    command.upgrade(alembic_config(url), revision)


class Database:
    """One engine and its session factory; lives on ``app.state.db``."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def ensure_schema(self, auto_migrate: bool | None = None) -> None:
        """Migrate the embedded SQLite file; refuse an external database behind the code."""
        head = head_revision(self.url)
        current = current_revision(self.engine)
        if current == head:
            return
        if auto_migrate is None:
            auto_migrate = self.is_sqlite
        if auto_migrate:
            upgrade(self.url)
            return
        raise DatabaseBehind(
            f"the database is at schema {current or 'empty'} but this code needs {head}:"
            " run `woundscope db upgrade` (back it up first)"
        )

    def check(self) -> None:
        """Raise when the database cannot answer a query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error (for commands)."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
