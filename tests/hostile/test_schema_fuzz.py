"""Schema fuzzing: schemathesis generates requests for every operation of the live
OpenAPI schema, sent with a valid admin key and real resource ids in the path (so
the handlers run past the lookups), bodies and query strings fuzzed. No answer may
be a server error, and every answer must match the schema's content type and, where
the status is documented, its response schema. Bounded: ``EXAMPLES`` per operation.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.api.conftest import Service, Trial, make_trial, sample_photo

EXAMPLES = int(os.environ.get("WOUNDSCOPE_FUZZ_EXAMPLES", "6"))
CHECKS = [
    checks.not_a_server_error,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_world(service: Service) -> tuple[Trial, dict[str, Any]]:
    trial = make_trial(service)
    wound = trial.wound("A")
    admin = trial.keys["admin"]
    subject = trial.client.get(f"/v1/wounds/{wound}", headers=admin).json()["subject"]
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    assert r.status_code == 201, r.text
    spare = trial.client.post(
        "/v1/keys", json={"role": "monitor", "holder": "spare", "study": trial.study}, headers=admin
    )
    assert spare.status_code == 201, spare.text
    ids = {
        "study": trial.study,
        "subject": subject,
        "wound": wound,
        "assessment": r.json()["id"],
        "key_id": spare.json()["id"],
    }
    return trial, ids


def test_no_server_error_and_answers_conform(
    service: Service, fuzz_world: tuple[Trial, dict[str, Any]]
) -> None:
    trial, ids = fuzz_world
    schema = schemathesis.openapi.from_asgi("/openapi.json", service.app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            # Real ids in the path, except in every other example (unknown ids must 404)
            if case.path_parameters and zlib.crc32(repr(case.body).encode()) % 2 == 0:
                case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
            headers = {**(case.headers or {}), **trial.keys["admin"]}
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
