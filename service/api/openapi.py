"""The OpenAPI document, made to tell clients the truth (one place, not every route).

FastAPI's default document misleads code generators in three ways this module fixes
after the schema is generated:

- multipart file fields carry only ``contentMediaType`` (JSON Schema 2020-12), so
  openapi-python-client and others send them as text: they get ``format: binary``;
- only 422 is documented, with FastAPI's list-of-errors body, which the service never
  answers: every operation documents the error answers it can give (401, 403, 404,
  409, 413, 415, 422, 423, 503) with the one ``{code, detail}`` body
  (``components.schemas.Error``) and the codes of ``service.core.errors.ERROR_CODES``;
- which of them apply follows the rules below (``error_statuses``, and ``error_codes``
  for the codes of each: an operation lists only the codes it can answer, in its
  descriptions and in ``x-error-codes``), checked against the access matrix, hostile
  inputs and the routes by the tests;
- file answers (photo, mask, overlay, marker, metrics, the ``.xpt`` exports) are
  documented as nothing, or as an empty JSON schema, so a generated client parses
  nothing: each gets its media type with a binary schema (``BINARY_ANSWERS``), and
  beside it ``application/octet-stream``, the one binary media type that
  openapi-python-client reads (as bytes) without a configuration of its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.core.errors import ERROR_CODES

ERROR_SCHEMA_NAME = "Error"
ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA_NAME}"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["code", "detail"],
    "properties": {
        "code": {
            "type": "string",
            "description": "stable snake_case code (README, 'Error codes')",
            "examples": ["not_found"],
        },
        "detail": {"type": "string", "description": "what went wrong and what to do"},
    },
}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")

# Reads that not every role may make (the others are open to every role of the study).
RESTRICTED_READS = ("/export.", "/v1/audit", "/v1/keys", "/reanalyses/")
# Paths whose writes change a study's data, refused while it is locked (423; a PATCH of
# the study itself that only unlocks it is taken). A new study and keys are not.
_LOCKABLE_PREFIXES = ("/v1/studies/{study}", "/v1/subjects/", "/v1/wounds/", "/v1/assessments/")
# Operations that name a study or site outside their path (body or query): 404 too.
_NAMES_OUTSIDE_PATH = (("post", "/v1/keys"), ("get", "/v1/audit"), ("post", "/v1/precheck"))
# POSTs that only read (a file a GET cannot carry): not writes, so no 403, 409 or 423.
READ_ONLY_POSTS = ("/v1/precheck",)
# Operations with a per-key rate (``service.api.limits.KeyRates``, the pre-check's own):
# 429 rate_limited with Retry-After past it.
_RATE_LIMITED = (
    ("post", "/v1/wounds/{wound}/assessments"),
    ("get", "/v1/assessments/{assessment}/overlay.jpg"),
    ("post", "/v1/precheck"),
)


def _body_media(operation: dict[str, Any]) -> set[str]:
    return set(operation.get("requestBody", {}).get("content", {}))


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from what it is:

    - 401 (missing_key, invalid_key): it needs a key;
    - 403 (forbidden): a write, or a read kept to some roles (exports, audit, keys);
    - 404 (not_found): a path parameter (or the body or query) names a resource;
    - 409: a create (already_exists, idempotency_conflict) or a change of an
      assessment (already_voided) or of a subject event (event_already_voided);
    - 413 (payload_too_large, photo_too_large, too_many_pixels): it takes a body;
    - 415 (unsupported_format, animated_image): it takes a file (a photo or a mask);
    - 422: it takes parameters or a body;
    - 423 (study_locked): a write to a study's data;
    - 429 (rate_limited): uploads, overlays, exports and pre-checks past the key's rate;
    - 503: anything that reaches the database, the store or the model.
    """
    method = method.lower()
    secured = bool(operation.get("security"))
    write = method in ("post", "put", "patch", "delete") and path not in READ_ONLY_POSTS
    media = _body_media(operation)
    statuses: set[int] = set()
    if secured:
        statuses.add(401)
        if write or any(part in path for part in RESTRICTED_READS):
            statuses.add(403)
    if "{" in path or (method, path) in _NAMES_OUTSIDE_PATH:
        statuses.add(404)
    changes_a_voidable = method in ("put", "patch") and (
        path.startswith("/v1/assessments/") or path.endswith("/events/{event_id}")
    )
    when = {
        409: (method == "post" and write) or changes_a_voidable,
        413: bool(media),
        415: "multipart/form-data" in media,
        422: bool(operation.get("parameters") or media),
        423: write and path.startswith(_LOCKABLE_PREFIXES),
        429: (method, path) in _RATE_LIMITED or "/export." in path,
        503: secured or path == "/readyz",
    }
    return sorted(statuses | {status for status, applies in when.items() if applies})


# Which codes an operation can answer, beside its status (``error_statuses``): the
# codes every operation of that status can give, then those that only some can, by
# the fields of its body, its kind or its path. ``tests/api/test_openapi_errors.py``
# sends the access matrix's requests and hostile inputs and checks every answered code
# is documented for its operation.
_STATUS_CODES: dict[int, tuple[str, ...]] = {
    401: ("missing_key", "invalid_key"),
    403: ("forbidden",),
    404: ("not_found",),
    413: ("payload_too_large",),
    415: (),
    422: ("invalid_request",),
    423: ("study_locked",),
    429: ("rate_limited",),
    503: ("database_unavailable", "database_behind"),
}
_IMAGE_FILE_CODES = {
    413: ("photo_too_large", "too_many_pixels"),
    415: ("unsupported_format", "animated_image"),
    422: ("empty_file", "corrupt_image", "unreadable_file"),
}
# Body fields whose checks have their own codes (all 422).
_FIELD_CODES: dict[str, tuple[str, ...]] = {
    "captured_at": ("invalid_date",),
    "target_point": ("invalid_target_point",),
    "ruler": ("invalid_ruler",),
    "ruler_mm": ("invalid_ruler",),
    "px_per_mm": ("invalid_scale",),
    "mask": ("invalid_mask", "mask_size_mismatch"),
    "polygon": ("invalid_mask", "mask_size_mismatch"),
    "reason": ("reason_required",),
    "model": ("model_not_installed",),
    "box": ("invalid_prompt",),
    "points": ("invalid_prompt", "too_many_points"),
}
# Operations that run work on the worker pool (the model, decoding, drawing): 503 busy;
# those that read or write the photo store: 503 storage_unavailable.
_POOL_WORK = (
    ("post", "/v1/wounds/{wound}/assessments"),
    ("put", "/v1/assessments/{assessment}/mask"),
    ("get", "/v1/assessments/{assessment}/overlay.jpg"),
    ("post", "/v1/assessments/{assessment}/outline"),
    ("post", "/v1/precheck"),
)
_MODEL_WORK = (
    ("post", "/v1/wounds/{wound}/assessments"),
    ("post", "/v1/assessments/{assessment}/outline"),
    ("post", "/v1/precheck"),
)
_PHOTO_UPLOAD = ("post", "/v1/wounds/{wound}/assessments")
_STORE_SUFFIXES = ("/photo.jpg", "/mask.png", "/overlay.jpg", "/mask", "/outline")


def _body_fields(operation: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The properties of the operation's request body (its schema or the one it names)."""
    fields: dict[str, Any] = {}
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema", {})
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        fields.update(components.get(name, schema).get("properties", {}))
    return fields


def _is_file(field: dict[str, Any]) -> bool:
    return any(
        node.get("format") == "binary" or "contentMediaType" in node
        for node in (field, *field.get("anyOf", ()))
    )


def _is_text(field: dict[str, Any]) -> bool:
    """A free-text field (a string that is not a file): ``unsafe_text`` may refuse it."""
    return not _is_file(field) and any(
        node.get("type") == "string" for node in (field, *field.get("anyOf", ()))
    )


def _conflict_codes(method: str, path: str) -> tuple[str, ...]:
    if (method, path) == _PHOTO_UPLOAD:
        return ("idempotency_conflict", "idempotency_key_reused", "after_subject_event")
    if path.startswith("/v1/assessments/"):
        return ("already_voided",)
    if path.endswith("/events/{event_id}"):
        return ("event_already_voided",)
    return ("already_exists",)


def _body_codes(fields: dict[str, Any]) -> list[tuple[int, str]]:
    """(status, code) that the body's fields can bring: a file, checked fields, text."""
    found = []
    if any(_is_file(field) for field in fields.values()):
        found += [(status, c) for status, codes in _IMAGE_FILE_CODES.items() for c in codes]
    found += [(422, c) for name in fields for c in _FIELD_CODES.get(name, ())]
    if any(_is_text(field) for field in fields.values()):
        found.append((422, "unsafe_text"))
    return found


def _work_codes(method: str, path: str) -> list[tuple[int, str]]:
    """(status, code) that the operation's work can bring: conflicts, the worker pool,
    the model, the photo store."""
    found = [(409, c) for c in _conflict_codes(method, path)]
    if (method, path) in _POOL_WORK:
        found.append((503, "busy"))
    if (method, path) in _MODEL_WORK:
        found.append((503, "no_model"))
    if path.endswith(_STORE_SUFFIXES) or (method, path) == _PHOTO_UPLOAD:
        found.append((503, "storage_unavailable"))
    return found


def error_codes(
    method: str, path: str, operation: dict[str, Any], components: dict[str, Any]
) -> dict[int, list[str]]:
    """The error codes an operation can answer, by status (``error_statuses`` and the
    statuses its route declares), each a code of ``ERROR_CODES`` with that status."""
    method = method.lower()
    statuses = set(error_statuses(method, path, operation))
    statuses |= {int(s) for s in operation.get("responses", {}) if s.isdigit() and int(s) >= 400}
    if path == "/readyz":
        return {status: ["not_ready"] if status == 503 else [] for status in sorted(statuses)}
    found = _body_codes(_body_fields(operation, components)) + _work_codes(method, path)
    answer: dict[int, list[str]] = {}
    for status in sorted(statuses):
        listed = [*_STATUS_CODES.get(status, ()), *(c for s, c in found if s == status)]
        answer[status] = [c for c in dict.fromkeys(listed) if ERROR_CODES[c][0] == status]
    return answer


def _error_response(codes: list[str], description: str | None) -> dict[str, Any]:
    listed = ", ".join(f"`{c}`" for c in codes)
    given = description if description and description != "Validation Error" else ""
    text = f"{given} (codes: {listed})" if given and listed else given or listed
    return {
        "description": text or "error",
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
        "x-error-codes": codes,
    }


# The file answers, by the end of their path: the media type the service answers.
BINARY_ANSWERS: dict[str, str] = {
    "/photo.jpg": "image/jpeg",
    "/overlay.jpg": "image/jpeg",
    "/mask.png": "image/png",
    "/v1/marker.pdf": "application/pdf",
    "/v1/marker.png": "image/png",
    ".xpt": "application/x-sas-xport",
}
GENERIC_BINARY = "application/octet-stream"
BINARY_SCHEMA: dict[str, str] = {"type": "string", "format": "binary"}
# The Prometheus text format (prometheus_client.CONTENT_TYPE_LATEST without parameters).
METRICS_ANSWER = {"text/plain": {"schema": {"type": "string"}}}


def _file_answer(path: str, operation: dict[str, Any]) -> None:
    """The 200 answer of a file route: its media type and a binary schema (in place)."""
    media = next((m for end, m in BINARY_ANSWERS.items() if path.endswith(end)), None)
    ok = operation.get("responses", {}).get("200")
    if ok is None:
        return
    if path == "/metrics":
        ok["content"] = METRICS_ANSWER
        return
    if media is None:
        return
    ok["content"] = {media: {"schema": BINARY_SCHEMA}, GENERIC_BINARY: {"schema": BINARY_SCHEMA}}
    ok["description"] = (
        f"The file's bytes (Content-Type: {media}; {GENERIC_BINARY} is listed for"
        " generic clients, which read it as bytes)"
    )


def _binary_file_fields(node: Any) -> None:
    """``format: binary`` beside every ``contentMediaType`` file field (in place)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "contentMediaType" in node:
            node["format"] = "binary"
        for value in node.values():
            _binary_file_fields(value)
    elif isinstance(node, list):
        for value in node:
            _binary_file_fields(value)


def _replace_refs(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        if node.get("$ref") == old:
            node["$ref"] = new
        for value in node.values():
            _replace_refs(value, old, new)
    elif isinstance(node, list):
        for value in node:
            _replace_refs(value, old, new)


def complete_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document with file fields, the error body and every operation's
    error answers (in place; returned for convenience)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_ERROR_SCHEMAS:
        components.pop(name, None)
    components[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    _replace_refs(schema, "#/components/schemas/HTTPValidationError", ERROR_REF)
    _binary_file_fields(components)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _file_answer(path, operation)
            responses = operation["responses"]
            for status, codes in error_codes(method, path, operation, components).items():
                given = responses.get(str(status), {})
                responses[str(status)] = {
                    **given,
                    **_error_response(codes, given.get("description")),
                }
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve ``complete_schema`` of FastAPI's document at /openapi.json (and /docs)."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        app.openapi_schema = complete_schema(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
