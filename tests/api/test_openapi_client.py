"""The OpenAPI document as a client generator reads it.

A client is generated with openapi-python-client (in a temporary folder) from the
/openapi.json of a live uvicorn server, and runs the whole upload flow through it:
study -> site -> subject -> wound -> photo upload (a sample with a printed marker, and
one calibrated by a ruler the way /docs describes it) -> the wound, subject and study
endpoints. The document's promises are checked beside: file fields as binary, every
error answer with the one ``{code, detail}`` body, 403 exactly where the access matrix
refuses a role, the full measurement typed.
"""

from __future__ import annotations

import importlib
import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from service.core.measure import Measurement
from service.persistence.db import Database
from tests.api.conftest import (
    Service,
    encode,
    marker_photo_rgb,
    need_model,
    sample_photo,
    server_admin_key,
)
from tests.conftest import ROOT, need
from tests.core.healing.seed import MODEL_DIR
from tests.hostile.test_access_matrix import MATRIX, PUBLIC, ROLES, World
from tests.hostile.test_access_matrix import world as matrix_world

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "woundscope_generated_client"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    base: str
    admin_key: str
    spec: dict[str, Any]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`uvicorn service.api.app:create_app` on a free port, SQLite in a temporary data dir."""
    need_model()
    data_dir = tmp_path_factory.mktemp("openapi-live")
    env = {
        **os.environ,
        "WOUNDSCOPE_DATA_DIR": str(data_dir),
        "WOUNDSCOPE_MODEL": str(MODEL_DIR),
        "WOUNDSCOPE_LOG_JSON": "false",
        "WOUNDSCOPE_LOG_LEVEL": "WARNING",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.api.app:create_app", "--factory"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text()[-3000:])
                time.sleep(0.3)
            db = Database(f"sqlite:///{data_dir / 'woundscope.db'}")
            key = server_admin_key(db, "OpenAPI client test")
            db.dispose()
            spec = httpx.get(f"{base}/openapi.json", timeout=60).json()
            yield Live(base=base, admin_key=key, spec=spec)
        finally:
            process.terminate()
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def generated(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package openapi-python-client generates from the live document."""
    need(GENERATOR.is_file(), f"openapi-python-client is not installed ({GENERATOR}): pip install")
    folder = tmp_path_factory.mktemp("generated")
    spec_path = folder / "openapi.json"
    spec_path.write_bytes(httpx.get(f"{live.base}/openapi.json", timeout=60).content)
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec_path), "--meta", "none"]
        + ["--output-path", str(folder / PACKAGE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Every operation generated (a schema the generator cannot read is skipped with a warning).
    assert "Unable to parse" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        shutil.rmtree(folder / PACKAGE, ignore_errors=True)


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def _op(package: ModuleType, tag: str, operation_id: str) -> Any:
    return _module(package, f"api.{tag}.{operation_id}")


def test_generated_client_runs_the_upload_flow(live: Live, generated: ModuleType) -> None:
    models = _module(generated, "models")
    types = _module(generated, "types")
    client = generated.AuthenticatedClient(base_url=live.base, token=live.admin_key, timeout=120)
    study_id = f"OAS{secrets.token_hex(3)}"

    study = _op(generated, "studies", "create_study_v1_studies_post").sync(
        client=client, body=models.StudyCreate(id=study_id, name="generated client", marker_mm=20.0)
    )
    assert isinstance(study, models.StudyPublic), study
    site = _op(generated, "studies", "create_site_v1_studies_study_sites_post").sync(
        study_id, client=client, body=models.SiteCreate(id="A", name="Site A")
    )
    assert isinstance(site, models.SitePublic), site
    subject = _op(generated, "subjects", "create_subject_v1_studies_study_subjects_post").sync(
        study_id, client=client, body=models.SubjectCreate(code="S001", site="A")
    )
    assert isinstance(subject, models.SubjectPublic), subject
    wound = _op(generated, "wounds", "create_wound_v1_subjects_subject_wounds_post").sync(
        subject.id,
        client=client,
        body=models.WoundCreate(label="W1", location="left hallux", index_leg=True),
    )
    assert isinstance(wound, models.WoundPublic), wound

    upload = _op(generated, "assessments", "upload_assessment_v1_wounds_wound_assessments_post")
    body_type = models.BodyUploadAssessmentV1WoundsWoundAssessmentsPost

    def photo(data: bytes, name: str) -> Any:
        return types.File(payload=io.BytesIO(data), file_name=name, mime_type="image/jpeg")

    marker_jpeg = encode(marker_photo_rgb(), "JPEG", quality=95)
    first = upload.sync(
        wound.id,
        client=client,
        body=body_type(
            photo=photo(marker_jpeg, "wound.jpg"),
            captured_at="2026-01-05",
            visit="V1",
            epithelialized=False,
            drainage=True,
        ),
    )
    assert isinstance(first, models.AssessmentPublic), first
    m = first.measurement
    assert isinstance(m, models.MeasurementPublic)
    assert m.calibration == "marker" and m.calibrated
    assert m.area_cm2 is not None and m.area_cm2_low <= m.area_cm2 <= m.area_cm2_high
    assert m.perimeter_cm > 0 and m.tilt_deg is not None
    assert isinstance(m.uncertainty, models.UncertaintyPublic)
    assert m.model.sha256 and all(isinstance(q, models.QualityFlagPublic) for q in m.quality)

    # A photo without a marker, calibrated by a ruler as /docs describes both forms:
    # 'x1,y1,x2,y2,mm', or four coordinates and ruler_mm (100 px over 10 mm: 10 px/mm).
    plain = sample_photo("0078")
    for fields in ({"ruler": "10,10,110,10,10"}, {"ruler": "10,10,110,10", "ruler_mm": "10"}):
        answer = upload.sync_detailed(
            wound.id,
            client=client,
            body=body_type(photo=photo(plain, "ruler.jpg"), captured_at="2026-01-19", **fields),
        )
        assert answer.status_code == 201, (fields, answer.content[:300])
        got = answer.parsed.measurement
        assert got.calibration == "ruler", fields
        assert got.px_per_mm == pytest.approx(10.0, rel=1e-3), fields

    alone = upload.sync_detailed(
        wound.id,
        client=client,
        body=body_type(photo=photo(plain, "ruler.jpg"), captured_at="2026-01-19", ruler_mm="10"),
    )
    assert (alone.status_code, alone.parsed.code) == (422, "invalid_ruler")

    # Errors come back typed: the one {code, detail} body.
    refused = upload.sync_detailed(
        wound.id,
        client=client,
        body=body_type(
            photo=types.File(payload=io.BytesIO(b"not a photo"), file_name="x.txt"),
            captured_at="2026-01-05",
        ),
    )
    assert refused.status_code == 415 and isinstance(refused.parsed, models.Error)
    assert refused.parsed.code == "unsupported_format"
    anonymous = generated.Client(base_url=live.base, timeout=30)
    missing = _op(generated, "wounds", "get_wound_v1_wounds_wound_get").sync_detailed(
        wound.id, client=anonymous
    )
    assert missing.status_code == 401 and missing.parsed.code == "missing_key"

    # A flagged photo (the bundled model is often unsure of this outline) is accepted by
    # a clinician, through the client too, and then counts.
    if not first.counted:
        accepted = _op(
            generated, "assessments", "update_assessment_v1_assessments_assessment_patch"
        ).sync(first.id, client=client, body=models.AssessmentUpdate(accepted=True))
        assert isinstance(accepted, models.AssessmentPublic) and accepted.counted, accepted

    wound_ep = _op(generated, "endpoints", "get_wound_endpoints_v1_wounds_wound_endpoints_get")
    answer = wound_ep.sync_detailed(wound.id, client=client)
    assert answer.status_code == 200, answer.content[:300]
    endpoints = answer.parsed.to_dict()
    assert endpoints["baseline_area_cm2"] == pytest.approx(m.area_cm2, rel=1e-6)
    assert [v["assessment"] for v in endpoints["visits"]][0] == first.id
    subject_ep = _op(
        generated, "endpoints", "get_subject_endpoints_v1_subjects_subject_endpoints_get"
    ).sync_detailed(subject.id, client=client)
    assert subject_ep.status_code == 200
    assert [w["wound"] for w in subject_ep.parsed.to_dict()["wounds"]] == [wound.id]
    study_ep = _op(
        generated, "endpoints", "get_study_endpoints_v1_studies_study_endpoints_get"
    ).sync_detailed(study_id, client=client)
    assert study_ep.status_code == 200 and study_ep.parsed.to_dict()["subjects"] == 1


def _op_by_id(package: ModuleType, spec: dict[str, Any], method: str, path: str) -> Any:
    """The generated module of an operation (its operationId, snake-cased as the generator
    does: runs of underscores made one)."""
    import re

    operation = spec["paths"][path][method]
    name = re.sub(r"_+", "_", operation["operationId"])
    return _op(package, re.sub(r"\W", "_", operation["tags"][0]), name)


# What each file answer starts with: the generated client must hand back these bytes.
FILE_MAGIC = {
    "/v1/assessments/{assessment}/photo.jpg": b"\xff\xd8\xff",
    "/v1/assessments/{assessment}/mask.png": b"\x89PNG",
    "/v1/assessments/{assessment}/overlay.jpg": b"\xff\xd8\xff",
    "/v1/marker.pdf": b"%PDF",
    "/v1/marker.png": b"\x89PNG",
    "/v1/studies/{study}/export.dm.xpt": b"HEADER RECORD",
    "/v1/studies/{study}/export.tu.xpt": b"HEADER RECORD",
    "/v1/studies/{study}/export.tr.xpt": b"HEADER RECORD",
    "/v1/studies/{study}/export.adtte.xpt": b"HEADER RECORD",
}


def test_generated_client_reads_every_file_answer(live: Live, generated: ModuleType) -> None:
    """Photo, mask, overlay, marker sheets, the SAS transport exports and the metrics
    come back parsed (bytes in a ``File``, the metrics as text), not ``None``."""
    auth = {"Authorization": f"Bearer {live.admin_key}"}
    study = f"BIN{secrets.token_hex(3)}"
    with httpx.Client(base_url=live.base, headers=auth, timeout=120) as http:
        made = http.post("/v1/studies", json={"id": study, "name": "files", "marker_mm": 20.0})
        assert made.status_code == 201, made.text
        assert http.post(f"/v1/studies/{study}/sites", json={"id": "A"}).status_code == 201
        subject = http.post(f"/v1/studies/{study}/subjects", json={"code": "S1", "site": "A"})
        wound = http.post(f"/v1/subjects/{subject.json()['id']}/wounds", json={"label": "W1"})
        upload = http.post(
            f"/v1/wounds/{wound.json()['id']}/assessments",
            files={"photo": ("w.jpg", encode(marker_photo_rgb(), "JPEG", quality=95))},
            data={"captured_at": "2026-01-05"},
        )
        assert upload.status_code == 201, upload.text
    assessment = upload.json()["id"]
    types = _module(generated, "types")
    client = generated.AuthenticatedClient(base_url=live.base, token=live.admin_key, timeout=120)
    for path, magic in FILE_MAGIC.items():
        module = _op_by_id(generated, live.spec, "get", path)
        args = [assessment] if "{assessment}" in path else [study] if "{study}" in path else []
        answer = module.sync_detailed(*args, client=client)
        assert answer.status_code == 200, (path, answer.content[:200])
        assert isinstance(answer.parsed, types.File), (path, type(answer.parsed))
        assert answer.parsed.payload.read().startswith(magic), path
    metrics = _op_by_id(generated, live.spec, "get", "/metrics").sync_detailed(client=client)
    assert metrics.status_code == 200 and isinstance(metrics.parsed, str)
    assert "# HELP" in metrics.parsed


def test_file_answers_declare_their_media_type_and_a_binary_schema(live: Live) -> None:
    binary = {"type": "string", "format": "binary"}
    media = {".jpg": "image/jpeg", ".png": "image/png", ".pdf": "application/pdf"}
    for path in FILE_MAGIC:
        content = live.spec["paths"][path]["get"]["responses"]["200"]["content"]
        own = media.get(Path(path).suffix, "application/x-sas-xport")
        assert content == {own: {"schema": binary}, "application/octet-stream": {"schema": binary}}


def test_each_operation_lists_only_its_own_error_codes(live: Live) -> None:
    """A GET of a photo does not list the upload's codes; the upload lists them."""
    from service.core.errors import ERROR_CODES

    paths = live.spec["paths"]

    def codes(path: str, method: str, status: str) -> list[str]:
        return list(paths[path][method]["responses"][status]["x-error-codes"])

    upload = paths["/v1/wounds/{wound}/assessments"]["post"]["responses"]
    assert {"invalid_ruler", "invalid_date", "corrupt_image"} <= set(
        codes("/v1/wounds/{wound}/assessments", "post", "422")
    )
    assert "invalid_ruler" in upload["422"]["description"]
    assert codes("/v1/assessments/{assessment}/photo.jpg", "get", "422") == ["invalid_request"]
    assert "invalid_ruler" not in str(paths["/v1/assessments/{assessment}/photo.jpg"])
    assert codes("/v1/studies/{study}/export.tr.xpt", "get", "403") == ["forbidden"]
    mask = set(codes("/v1/assessments/{assessment}/mask", "put", "422"))
    assert {"invalid_mask", "mask_size_mismatch", "reason_required", "corrupt_image"} <= mask
    assert "invalid_target_point" not in mask and "invalid_date" not in mask
    for method, path, op in _operations(live.spec):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                listed = response["x-error-codes"]
                assert listed, (method, path, status)
                assert all(ERROR_CODES[c][0] == int(status) for c in listed), (path, status)


# --- what the document promises -------------------------------------------------------


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path, op


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_file_fields_are_binary(live: Live) -> None:
    schemas = live.spec["components"]["schemas"]
    files = [n for n in _walk(schemas) if "contentMediaType" in n]
    assert len(files) >= 2  # the photo and the mask
    assert all(n.get("format") == "binary" for n in files), files
    upload = schemas["Body_upload_assessment_v1_wounds__wound__assessments_post"]
    assert upload["properties"]["photo"]["format"] == "binary"


def test_every_error_answer_is_the_code_detail_body(live: Live) -> None:
    schemas = live.spec["components"]["schemas"]
    assert schemas["Error"]["required"] == ["code", "detail"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for method, path, op in _operations(live.spec):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
        if (method, path) in PUBLIC:
            continue
        documented = set(op["responses"])
        assert {"401", "503"} <= documented, (method, path)
        if "{" in path:
            assert "404" in documented, (method, path)


def test_403_documented_where_the_access_matrix_refuses_a_role(live: Live) -> None:
    for method, path, op in _operations(live.spec):
        if (method, path) in PUBLIC:
            continue
        _, allowed, _ = MATRIX[(method, path)]
        refuses = set(allowed) != set(ROLES)
        assert ("403" in op["responses"]) == refuses, (method, path, allowed)


def test_locks_uploads_and_conflicts_documented(live: Live) -> None:
    paths = live.spec["paths"]
    upload = paths["/v1/wounds/{wound}/assessments"]["post"]["responses"]
    assert {"409", "413", "415", "422", "423", "503"} <= set(upload)
    assert "423" in paths["/v1/assessments/{assessment}/mask"]["put"]["responses"]
    assert "409" in paths["/v1/studies"]["post"]["responses"]
    assert "415" in paths["/v1/assessments/{assessment}/mask"]["put"]["responses"]
    assert "423" in paths["/v1/studies/{study}"]["patch"]["responses"]  # a rename, locked
    assert "423" not in paths["/v1/studies"]["post"]["responses"]
    assert "423" not in paths["/v1/keys"]["post"]["responses"]
    assert "404" in paths["/v1/keys"]["post"]["responses"]  # the body names the study


def test_the_full_measurement_is_typed(live: Live) -> None:
    properties = live.spec["components"]["schemas"]["MeasurementPublic"]["properties"]
    keys = Measurement(area_px=1, components=1, calibration="none").to_json()
    assert set(keys) <= set(properties), set(keys) - set(properties)
    for name in ("area_cm2_low", "area_cm2_high", "perimeter_cm", "tilt_deg", "uncertainty"):
        assert "description" in properties[name] or "anyOf" in properties[name], name
    quality = properties["quality"]["items"]
    assert quality == {"$ref": "#/components/schemas/QualityFlagPublic"}


world = matrix_world  # the access matrix's study, sites and resources (own instance here)


def test_423_documented_exactly_where_a_locked_study_refuses(
    world: World, service: Service
) -> None:
    """Every write run on a locked study (the access matrix's requests, as its admin):
    423 answered exactly by the operations that document it."""
    spec = service.client.get("/openapi.json").json()
    trial, admin = world.trial, world.trial.keys["admin"]
    locked = trial.client.patch(f"/v1/studies/{trial.study}", json={"locked": True}, headers=admin)
    assert locked.status_code == 200, locked.text
    try:
        for method, path, op in _operations(spec):
            if method == "GET" or (method, path) in PUBLIC:
                continue
            request = MATRIX[(method, path)][0]
            got = request(trial, world.own, admin).status_code
            assert (got == 423) == ("423" in op["responses"]), (method, path, got)
    finally:
        unlocked = trial.client.patch(
            f"/v1/studies/{trial.study}", json={"locked": False}, headers=admin
        )
        assert unlocked.status_code == 200, unlocked.text
