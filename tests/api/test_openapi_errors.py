"""Each operation documents the error codes it answers, and only those (``x-error-codes``
beside each error status, ``service.api.openapi.error_codes``): every request of the
access matrix, as every role, on its own site, another site and another study, and
without a key, plus malformed inputs, answers only codes its operation lists."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Service, sample_photo
from tests.hostile.test_access_matrix import MATRIX, ROLES, World
from tests.hostile.test_access_matrix import world as matrix_world

world = matrix_world  # the access matrix's study, sites and resources (own instance here)


def _undocumented(spec: dict[str, Any], method: str, path: str, response: Any) -> str | None:
    if response.status_code < 400:
        return None
    documented = spec["paths"][path][method.lower()]["responses"].get(str(response.status_code))
    code = response.json().get("code")
    if documented is None or code not in documented["x-error-codes"]:
        return f"{method} {path}: {response.status_code} {code} not documented"
    return None


def test_every_answered_error_code_is_documented_for_its_operation(
    world: World, service: Service
) -> None:
    spec = service.client.get("/openapi.json").json()
    trial = world.trial
    wrong = []
    cases = [(ids, trial.keys[role]) for role in ROLES for ids in (world.own, world.other_site)]
    cases += [(world.other_study, trial.keys["admin"]), (world.own, {})]
    cases += [(world.own, {"Authorization": "Bearer not-a-key"})]
    for ids, headers in cases:
        for (method, path), (request, _, _) in sorted(MATRIX.items()):
            problem = _undocumented(spec, method, path, request(trial, ids, headers))
            if problem:
                wrong.append(problem)

    admin, own = trial.keys["admin"], world.own
    upload = f"/v1/wounds/{own.wound}/assessments"
    photo = {"photo": ("p.jpg", sample_photo("0082"), "image/jpeg")}
    malformed = [
        ("POST", "/v1/wounds/{wound}/assessments", upload, {"files": photo, "data": {}}),
        (
            "POST",
            "/v1/wounds/{wound}/assessments",
            upload,
            {"files": photo, "data": {"captured_at": "2026-01-05", "ruler": "1,2,3"}},
        ),
        (
            "POST",
            "/v1/wounds/{wound}/assessments",
            upload,
            {"files": {"photo": ("x.txt", b"not a photo")}, "data": {"captured_at": "2026-01-05"}},
        ),
        (
            "PUT",
            "/v1/assessments/{assessment}/mask",
            f"/v1/assessments/{own.assessment}/mask",
            {"data": {"polygon": "[[1,1]]"}},
        ),
        (
            "GET",
            "/v1/assessments/{assessment}/photo.jpg",
            f"/v1/assessments/{own.assessment}/photo.jpg",
            {},
        ),
        ("GET", "/v1/studies/{study}/subjects", f"/v1/studies/{own.study}/subjects?limit=-1", {}),
        (
            "POST",
            "/v1/studies/{study}/sites",
            f"/v1/studies/{own.study}/sites",
            {"json": {"id": own.site, "name": "again"}},
        ),
    ]
    answered = set()
    for method, template, url, kw in malformed:
        response = trial.client.request(method, url, headers=admin, **kw)
        if response.status_code >= 400:
            answered.add(response.json()["code"])
        problem = _undocumented(spec, method, template, response)
        if problem:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)
    # The malformed inputs did reach their checks (the test checks something).
    assert {"invalid_ruler", "unsupported_format", "already_exists"} <= answered, answered
