"""A small real trial for route and browser tests: uploads through the API, known areas
through clinicians' polygon corrections (so the numbers are exact, whatever the model
segments), keys of every role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.domain.auth import create_key
from service.persistence.db import Database
from tests.conftest import ROOT, need


def _bundled_model() -> Path:
    """The released model these tests run (the highest installed version)."""
    from service.runtime.artifacts import ModelNotFound, resolve_model

    try:
        return resolve_model()
    except ModelNotFound:
        return ROOT / "models" / "none-installed"


MODEL_DIR = _bundled_model()
PHOTO = ROOT / "data" / "samples" / "fuseg" / "images" / "0078.jpg"
PX_PER_MM = 10.0


@contextmanager
def running_app(tmp_path_factory: Any) -> Iterator[tuple[Any, Any]]:
    """The service on the bundled model with a fresh data folder, as ``(TestClient,
    app)``; skipped, with the reason, when the model or the sample photo is missing."""
    need((MODEL_DIR / "model.onnx").is_file(), f"the bundled model is not at {MODEL_DIR}")
    need(PHOTO.is_file(), f"the sample photo is not at {PHOTO}")
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("woundscope"),
        model=str(MODEL_DIR),
        log_json=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, app


def square(side_px: int, x0: int = 40, y0: int = 40) -> str:
    """A polygon of a square (photo pixels); at 10 px/mm, side 100 px ≈ 1 cm²."""
    x1, y1 = x0 + side_px, y0 + side_px
    return f"[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}]]"


@dataclass
class Trial:
    study: str = "T1"
    keys: dict[str, str] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)
    wounds: dict[str, str] = field(default_factory=dict)
    assessments: dict[str, list[str]] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


# wound -> [(date, square side px, epithelialized, drainage)]
SERIES: dict[str, list[tuple[str, int, bool | None, bool | None]]] = {
    # Site A, S01 W1: 1.0 → 0.49 → 0 (closed day 28, confirmed day 42).
    "S01-W1": [
        ("2026-01-05", 100, False, True),
        ("2026-01-19", 70, False, False),
        ("2026-02-02", 0, True, False),
        ("2026-02-16", 0, True, False),
    ],
    # Site B, S02 W1: never closes.
    "S02-W1": [("2026-01-06", 120, False, True), ("2026-02-03", 100, False, True)],
}


def make_keys(db: Database, trial: Trial) -> None:
    with db.session() as session:
        for role, site in (
            ("admin", None),
            ("monitor", None),
            ("clinician", "A"),
            ("clinician_b", "B"),
            ("uploader", "A"),
        ):
            _, key = create_key(
                session,
                role=role.removesuffix("_b"),
                holder=f"Test {role}",
                study_id=trial.study,
                site_code=site,
            )
            trial.keys[role] = key


def seed(client: Any, db: Database, photo: Path = PHOTO) -> Trial:
    """Create study T1 (sites A and B), two subjects, their wounds and photos."""
    trial = Trial()
    with db.session() as session:
        _, admin_key = create_key(session, role="admin", holder="Bootstrap admin")
    boot = {"Authorization": f"Bearer {admin_key}"}
    client.post(
        "/v1/studies", json={"id": trial.study, "name": "Test trial"}, headers=boot
    ).raise_for_status()
    for site in ("A", "B"):
        client.post(
            f"/v1/studies/{trial.study}/sites", json={"id": site}, headers=boot
        ).raise_for_status()
    make_keys(db, trial)
    for code, site, arm in (("S01", "A", "active"), ("S02", "B", "control")):
        answer = client.post(
            f"/v1/studies/{trial.study}/subjects",
            json={"code": code, "site": site, "arm": arm},
            headers=boot,
        )
        answer.raise_for_status()
        trial.subjects[code] = answer.json()["id"]
    photo_bytes = photo.read_bytes()
    for wound_name, series in SERIES.items():
        code, label = wound_name.split("-")
        answer = client.post(
            f"/v1/subjects/{trial.subjects[code]}/wounds",
            json={"label": label, "location": "left hallux", "index_leg": True},
            headers=boot,
        )
        answer.raise_for_status()
        wound_id = answer.json()["id"]
        trial.wounds[wound_name] = wound_id
        trial.assessments[wound_name] = []
        for captured_at, side_px, epithelialized, drainage in series:
            form = {
                "captured_at": captured_at,
                "px_per_mm": str(PX_PER_MM),
                "epithelialized": str(epithelialized).lower(),
                "drainage": str(drainage).lower(),
            }
            answer = client.post(
                f"/v1/wounds/{wound_id}/assessments",
                data=form,
                files={"photo": ("photo.jpg", photo_bytes, "image/jpeg")},
                headers=boot,
            )
            answer.raise_for_status()
            assessment_id = answer.json()["id"]
            trial.assessments[wound_name].append(assessment_id)
            polygon = square(side_px) if side_px else square(0)
            if side_px:
                client.put(
                    f"/v1/assessments/{assessment_id}/mask",
                    data={"polygon": polygon, "reason": "seeded outline"},
                    headers=boot,
                ).raise_for_status()
            else:
                # A closed wound: an empty outline (all-zero mask PNG of the photo's size).
                client.put(
                    f"/v1/assessments/{assessment_id}/mask",
                    data={"reason": "closed"},
                    files={"mask": ("mask.png", empty_mask_png(answer.json()), "image/png")},
                    headers=boot,
                ).raise_for_status()
    return trial


def empty_mask_png(assessment: dict[str, Any]) -> bytes:
    import cv2
    import numpy as np

    mask = np.zeros((assessment["height"], assessment["width"]), dtype=np.uint8)
    ok, png = cv2.imencode(".png", mask)
    assert ok
    return png.tobytes()


def area_cm2(side_px: int) -> float:
    return (side_px / PX_PER_MM) ** 2 / 100.0
