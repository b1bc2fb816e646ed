"""Settings, the error registry, migrations, health/readiness/metrics, keys."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect, text

from service.config import Settings
from service.core.errors import ERROR_CODES, DatabaseBehind
from service.persistence.db import Database, current_revision, head_revision, upgrade
from tests.api.conftest import (
    ROOT,
    Service,
    Trial,
    bearer,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
    need_model,
)

TABLES = {
    "studies",
    "sites",
    "subjects",
    "wounds",
    "assessments",
    "measurements",
    "api_keys",
    "audit_log",
}


def test_settings_defaults_follow_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'woundscope.db'}"
    assert s.storage_url == (tmp_path / "photos").as_uri()


def test_settings_refuse_unsafe_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOUNDSCOPE_DATABASE_URL", "mysql://x/y")
    with pytest.raises(ValidationError, match="not supported"):
        Settings(data_dir=tmp_path)
    monkeypatch.delenv("WOUNDSCOPE_DATABASE_URL")
    monkeypatch.setenv("WOUNDSCOPE_INFERENCE_WORKERS", "0")
    with pytest.raises(ValidationError, match="inference_workers"):
        Settings(data_dir=tmp_path)


def _raised_codes() -> set[str]:
    """Every literal error code raised in service/ (code="..." and class code = "...")."""
    codes: set[str] = set()
    for path in (ROOT / "service").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "code"
                and isinstance(node.value, ast.Constant)
            ):
                codes.add(str(node.value.value))
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                codes.add(node.value.value)
    return codes


def test_every_error_code_is_registered() -> None:
    from service.core import imaging

    image_codes = {
        node.args[0].value
        for node in ast.walk(ast.parse(Path(imaging.__file__).read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "ImageError"
        and isinstance(node.args[0], ast.Constant)
    }
    assert image_codes - set(ERROR_CODES) == set()
    assert _raised_codes() - set(ERROR_CODES) == set()  # DomainError(code=...) anywhere
    assert {"busy", "not_found", "study_locked", "invalid_key"} <= set(ERROR_CODES)
    for code, (status, meaning) in ERROR_CODES.items():
        assert code.islower() and " " not in code, code
        assert 400 <= status < 600 and meaning.endswith(".")


def test_alembic_upgrade_from_empty_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    assert current_revision(db.engine) is None
    db.ensure_schema()  # the embedded default migrates itself
    assert current_revision(db.engine) == head_revision(url)
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.dispose()


@pytest.mark.postgres
def test_alembic_upgrade_from_empty_postgres(postgres_url: str) -> None:
    url = create_postgres_database(postgres_url)
    try:
        db = Database(url)
        with pytest.raises(DatabaseBehind, match="woundscope db upgrade"):
            db.ensure_schema()  # an external database is never migrated implicitly
        upgrade(url)
        db.ensure_schema()
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        db.dispose()
    finally:
        drop_postgres_database(url)


def test_audit_log_is_append_only(trial: Trial) -> None:
    with trial.service.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
        with pytest.raises(Exception, match="append-only"):
            conn.execute(text("DELETE FROM audit_log"))
        conn.rollback()
        with pytest.raises(Exception, match="append-only"):
            conn.execute(text("UPDATE audit_log SET actor = 'someone else'"))
        conn.rollback()


def test_health_ready_and_metrics(service: Service) -> None:
    need_model()
    c = service.client
    assert c.get("/healthz").json()["status"] == "ok"
    r = c.get("/readyz")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert checks["database"]["ok"] and checks["storage"]["ok"]
    assert checks["model"]["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert checks["model"]["default"].startswith("ulcerseg-")
    body = c.get("/metrics").text
    assert "woundscope_requests_total" in body and "woundscope_queue_depth" in body
    assert 'route="/readyz"' in body


def test_readyz_says_no_model_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.runtime import artifacts

    monkeypatch.setattr(artifacts, "BUNDLED_MODELS_DIR", tmp_path / "none")
    monkeypatch.delenv("WOUNDSCOPE_MODELS_DIR", raising=False)
    app = create_app(
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", max_upload_bytes=4096)
    )
    with TestClient(app) as client:
        r = client.get("/readyz")
        big = client.post(
            "/v1/studies",
            content=b"x" * (2 * 1024 * 1024),
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 503
    assert r.json()["code"] == "not_ready"
    assert "no model installed yet" in r.json()["detail"]
    # a body without a key is refused before it is read: 401, not 413 (issue 28)
    assert (big.status_code, big.json()["code"]) == (401, "missing_key")


def test_openapi_documents_the_core_paths(service: Service) -> None:
    spec = service.client.get("/openapi.json").json()
    for path in (
        "/v1/studies",
        "/v1/wounds/{wound}/assessments",
        "/v1/assessments/{assessment}/mask",
    ):
        assert path in spec["paths"]
    assert "study_locked" in spec["info"]["description"]
    assert service.client.get("/docs").status_code == 200


def test_errors_answer_code_and_detail(service: Service) -> None:
    c = service.client
    r = c.get("/v1/studies")
    assert (r.status_code, r.json()["code"]) == (401, "missing_key")
    r = c.get("/v1/studies", headers=bearer("ws_not-a-key"))
    assert (r.status_code, r.json()["code"]) == (401, "invalid_key")
    r = c.get("/v1/nowhere", headers=service.admin)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = c.post("/v1/studies", json={"name": "no id"}, headers=service.admin)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    assert "id" in r.json()["detail"]


def test_keys_revoked_and_scoped(trial: Trial) -> None:
    c, admin = trial.client, trial.service.admin
    r = c.post(
        "/v1/keys",
        json={"role": "clinician", "holder": "Dr X", "study": trial.study, "site": "A"},
        headers=admin,
    )
    assert r.status_code == 201
    key, key_id = r.json()["key"], r.json()["id"]
    assert key.startswith("ws_") and r.json()["prefix"] == key[:10]
    assert c.get(f"/v1/studies/{trial.study}", headers=bearer(key)).status_code == 200
    listed = c.get("/v1/keys", headers=admin).json()
    assert all("key" not in k for k in listed)
    assert c.delete(f"/v1/keys/{key_id}", headers=admin).status_code == 200
    r = c.get(f"/v1/studies/{trial.study}", headers=bearer(key))
    assert (r.status_code, r.json()["code"]) == (401, "invalid_key")
    # an uploader key needs a site; a monitor key may not have one
    r = c.post(
        "/v1/keys", json={"role": "uploader", "holder": "U", "study": trial.study}, headers=admin
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    # a study admin cannot make keys elsewhere, nor a server-wide key
    r = c.post("/v1/keys", json={"role": "admin", "holder": "Z"}, headers=trial.keys["admin"])
    assert r.status_code == 403
    r = c.post("/v1/keys", json={"role": "monitor", "holder": "m"}, headers=trial.keys["uploader"])
    assert r.status_code == 403


def _cli(args: list[str], env: dict[str, str]) -> Any:
    """Run ``woundscope <args>`` in-process (settings re-read from ``env``)."""
    from typer.testing import CliRunner

    from service.cli import app
    from service.config import get_settings

    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()


def test_keys_cli_prints_the_key_last(tmp_path: Path) -> None:
    env = {
        "WOUNDSCOPE_DATA_DIR": str(tmp_path),
        "WOUNDSCOPE_DATABASE_URL": "",
        "WOUNDSCOPE_STORAGE_URL": "",
    }
    out = _cli(["keys", "create", "--role", "admin", "--holder", "Ada"], env)
    assert out.exit_code == 0, out.output
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("ws_") and len(key) > 40
    listed = _cli(["keys", "list"], env)
    assert "Ada" in listed.stdout and key not in listed.stdout
    bad = _cli(
        ["keys", "create", "--role", "uploader", "--holder", "U", "--study", "NOPE", "--site", "A"],
        env,
    )
    assert bad.exit_code == 1 and "study NOPE not found" in bad.output
    key_id = out.stdout.split()[1]
    assert _cli(["keys", "revoke", key_id], env).exit_code == 0
    assert "revoked" in _cli(["keys", "list"], env).stdout


def test_keys_cli_audits_as_the_api_does(tmp_path: Path) -> None:
    """``keys create`` and ``keys revoke`` go through ``keys.issue_key`` and
    ``keys.revoke_key``: the same audit entries as ``POST``/``DELETE /v1/keys``
    (revoke by the printed prefix too), never the key's hash."""
    from sqlalchemy import select

    from service.config import Settings
    from service.persistence.db import Database
    from service.persistence.orm import ApiKey, AuditEntry

    env = {
        "WOUNDSCOPE_DATA_DIR": str(tmp_path),
        "WOUNDSCOPE_DATABASE_URL": "",
        "WOUNDSCOPE_STORAGE_URL": "",
    }
    out = _cli(["keys", "create", "--role", "admin", "--holder", "Ada"], env)
    assert out.exit_code == 0, out.output
    db = Database(Settings(data_dir=tmp_path, database_url="", storage_url="").database_url)
    try:
        with db.sessions() as session:
            prefix = session.scalars(select(ApiKey.prefix)).one()
        assert _cli(["keys", "revoke", prefix], env).exit_code == 0
        assert _cli(["keys", "revoke", "ws_nothere"], env).exit_code == 1
        with db.sessions() as session:
            key = session.scalars(select(ApiKey)).one()
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
            assert [e.action for e in entries] == ["key.create", "key.revoke"]
            created, revoked = entries
            assert created.resource == revoked.resource == f"key/{key.id}"
            assert created.actor.startswith("cli:") and revoked.actor.startswith("cli:")
            assert created.after["holder"] == "Ada" and "key_hash" not in created.after
            assert revoked.before["revoked_at"] is None and revoked.after["revoked_at"]
            assert "key_hash" not in revoked.before and "key_hash" not in revoked.after
    finally:
        db.dispose()


@pytest.mark.postgres
def test_serve_refuses_a_database_behind_the_code(postgres_url: str, tmp_path: Path) -> None:
    url = create_postgres_database(postgres_url)
    try:
        env = {
            "WOUNDSCOPE_DATA_DIR": str(tmp_path),
            "WOUNDSCOPE_DATABASE_URL": url,
            "WOUNDSCOPE_STORAGE_URL": "",
        }
        out = _cli(["serve", "--port", "1"], env)
        assert out.exit_code == 1
        assert "woundscope db upgrade" in out.output
        up = _cli(["db", "upgrade"], env)
        from service.persistence.db import head_revision

        assert up.exit_code == 0 and f"head {head_revision()}" in up.stdout
    finally:
        drop_postgres_database(url)


def test_marker_sheet_needs_no_key(service: Service) -> None:
    r = service.client.get("/v1/marker.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["content-type"] == "application/pdf"
    r = service.client.get("/v1/marker.pdf", params={"marker_mm": 1000})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")


def test_request_logs_carry_no_patient_data(trial: Trial) -> None:
    import io
    import json
    import logging

    from service.runtime.metrics import JsonFormatter
    from tests.api.conftest import sample_photo

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("woundscope")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        c = trial.client
        r = c.post(
            f"/v1/studies/{trial.study}/subjects",
            json={"code": "PATIENT-XYZ", "site": "A"},
            headers=trial.keys["admin"],
        )
        subject = r.json()["id"]
        wound = c.post(
            f"/v1/subjects/{subject}/wounds",
            json={"label": "W1", "location": "left heel"},
            headers=trial.keys["admin"],
        ).json()["id"]
        assert trial.upload(wound, sample_photo("0078"), filename="jane-doe.jpg").status_code == 201
        c.get(f"/v1/subjects/{subject}", headers=trial.keys["monitor"])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [x for x in lines if x["msg"] == "request"]
    assert {x["route"] for x in requests} >= {
        "/v1/subjects/{subject}",
        "/v1/wounds/{wound}/assessments",
    }
    text = stream.getvalue()
    for secret in ("PATIENT-XYZ", subject, wound, "left heel", "jane-doe"):
        assert secret not in text


def test_a_second_lifespan_does_not_close_the_running_app(tmp_path: Path) -> None:
    """schemathesis' ASGI transport (and some hosts) start the app's lifespan again on a
    running app; ending that one must not shut the first one's worker pool."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"))
    with TestClient(app) as outer:
        runtime = app.state.runtime
        with TestClient(app) as inner:
            assert inner.get("/healthz").status_code == 200
            assert app.state.runtime is runtime
        assert app.state.runtime is runtime
        assert runtime.pool.run(sum, [1, 2]) == 3
        assert outer.get("/healthz").status_code == 200
    assert app.state.runtime is None
