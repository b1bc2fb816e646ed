"""Fixtures for API tests: a real service (SQLite and PostgreSQL), a study with keys
of every role, photos. Reusable from other test packages::

    from tests.api.conftest import *  # noqa: F403  (or list the fixtures you need)

``service`` is one running app per backend for the whole session (parametrized:
``sqlite`` and ``postgres``); ``trial`` makes a fresh study on it with sites A and B
and a key for every role, so tests never see each other's data.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import make_url

from service.api.app import create_app
from service.config import Settings
from service.domain.auth import Caller, create_key
from service.persistence.db import Database, upgrade
from service.runtime.artifacts import installed_models
from service.simulator.scene import MARKER_MM
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples" / "fuseg"
PLANE_PX_PER_MM = 10.0


def need_model() -> str:
    """The installed model's id; skips (fails in CI) when none is installed yet."""
    models = installed_models()
    need(bool(models), "no segmentation model installed in models/ (the model issue releases one)")
    return models[0][0].id


# --- databases --------------------------------------------------------------------


def create_postgres_database(base_url: str) -> str:
    """A new empty database ``woundscope_test_<random>`` on the server of ``base_url``."""
    import psycopg

    name = f"woundscope_test_{secrets.token_hex(4)}"
    url = make_url(base_url)
    with psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        dbname=url.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(db_url: str) -> None:
    import psycopg

    url = make_url(db_url)
    with psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty, migrated database per backend (SQLite file; PostgreSQL throwaway DB)."""
    if request.param == "postgres":
        base = request.getfixturevalue("postgres_url")
        url = create_postgres_database(base)
        upgrade(url)
        yield url
        drop_postgres_database(url)
    else:
        folder = tmp_path_factory.mktemp("sqlite")
        yield f"sqlite:///{folder / 'woundscope.db'}"


# --- the service ------------------------------------------------------------------


@dataclass
class Service:
    app: FastAPI
    client: TestClient
    settings: Settings
    admin: dict[str, str]
    """Headers of a server admin key (every study)."""

    @property
    def backend(self) -> str:
        return "sqlite" if self.settings.is_sqlite else "postgres"

    @property
    def db(self) -> Database:
        db: Database = self.app.state.db
        return db


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        log_level="WARNING",
        inference_workers=2,
        inference_queue=6,
        **overrides,
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def server_admin_key(db: Database, holder: str = "Test Admin") -> str:
    with db.session() as session:
        _, key = create_key(session, role="admin", holder=holder)
    return key


@pytest.fixture(scope="session")
def service(backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A running app (lifespan started, bundled model loaded) on one backend."""
    data_dir = tmp_path_factory.mktemp("data")
    settings = make_settings(data_dir, backend_url)
    app = create_app(settings)
    with TestClient(app) as client:
        key = server_admin_key(app.state.db)
        yield Service(app=app, client=client, settings=settings, admin=bearer(key))


# --- a study with a key of every role ---------------------------------------------


@dataclass
class Trial:
    """A fresh study with sites A and B; ``keys[role]`` (site A for site roles) and
    ``keys[role + '_B']`` for the site-B keys."""

    service: Service
    study: str
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def client(self) -> TestClient:
        return self.service.client

    def subject(self, site: str = "A", code: str | None = None) -> str:
        code = code or f"S{secrets.token_hex(3)}"
        r = self.client.post(
            f"/v1/studies/{self.study}/subjects",
            json={"code": code, "site": site},
            headers=self.keys["admin"],
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def wound(self, site: str = "A", label: str = "W1") -> str:
        subject = self.subject(site)
        r = self.client.post(
            f"/v1/subjects/{subject}/wounds", json={"label": label}, headers=self.keys["admin"]
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def upload(
        self,
        wound: str,
        photo: bytes,
        *,
        key: str = "admin",
        captured_at: str = "2026-01-05",
        filename: str = "photo.jpg",
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> Any:
        need_model()
        return self.client.post(
            f"/v1/wounds/{wound}/assessments",
            files={"photo": (filename, photo, "application/octet-stream")},
            data={"captured_at": captured_at, **fields},
            headers={**self.keys[key], **(headers or {})},
        )


def make_trial(service: Service, marker_mm: float = MARKER_MM) -> Trial:
    client = service.client
    study = f"T{secrets.token_hex(4)}"
    r = client.post(
        "/v1/studies",
        json={"id": study, "name": "test study", "marker_mm": marker_mm},
        headers=service.admin,
    )
    assert r.status_code == 201, r.text
    for site in ("A", "B"):
        r = client.post(
            f"/v1/studies/{study}/sites",
            json={"id": site, "name": f"site {site}"},
            headers=service.admin,
        )
        assert r.status_code == 201, r.text
    trial = Trial(service=service, study=study)
    specs: dict[str, dict[str, str | None]] = {
        "uploader": {"role": "uploader", "site": "A"},
        "uploader_B": {"role": "uploader", "site": "B"},
        "clinician": {"role": "clinician", "site": "A"},
        "clinician_B": {"role": "clinician", "site": "B"},
        "monitor": {"role": "monitor", "site": None},
        "admin": {"role": "admin", "site": None},
    }
    for name, spec in specs.items():
        body = {
            "role": spec["role"],
            "holder": f"{name} holder",
            "study": study,
            "site": spec["site"],
        }
        r = client.post("/v1/keys", json=body, headers=service.admin)
        assert r.status_code == 201, r.text
        trial.keys[name] = bearer(r.json()["key"])
    return trial


@pytest.fixture
def trial(service: Service) -> Trial:
    return make_trial(service)


# --- photos -----------------------------------------------------------------------


def sample_photo(name: str = "0078") -> bytes:
    return (SAMPLES / "images" / f"{name}.jpg").read_bytes()


def marker_photo_rgb(name: str = "0078") -> np.ndarray:
    """A FUSeg sample (at 10 px/mm) with a 20 mm marker printed below it on skin."""
    from service.simulator.scene import paste_marker

    wound = np.asarray(Image.open(SAMPLES / "images" / f"{name}.jpg").convert("RGB"))
    h, w = wound.shape[:2]
    plane = np.empty((h + 320, w, 3), dtype=np.uint8)
    plane[:] = wound[-8:].mean(axis=(0, 1)).astype(np.uint8)  # skin-coloured floor
    plane[:h] = wound
    out, _ = paste_marker(
        plane, PLANE_PX_PER_MM, (w / 2 / PLANE_PX_PER_MM, (h + 160) / PLANE_PX_PER_MM), MARKER_MM
    )
    return out


def encode(rgb: np.ndarray, fmt: str = "JPEG", **params: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **params)
    return buf.getvalue()


@pytest.fixture(scope="session")
def marker_jpeg() -> bytes:
    return encode(marker_photo_rgb(), "JPEG", quality=95)


@pytest.fixture
def cli_caller() -> Caller:
    return Caller.cli("test")
