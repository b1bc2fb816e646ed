"""The OpenAPI document, made to tell clients the truth (one place, not every route).

FastAPI's default document misleads code generators in three ways this module fixes
after the schema is generated:

- multipart file fields carry only ``contentMediaType`` (JSON Schema 2020-12), so
  openapi-python-client and others send them as text: they get ``format: binary``;
- only 422 is documented, with FastAPI's list-of-errors body, which the service never
  answers: every operation documents the error answers it can give (401, 403, 404,
  409, 413, 415, 422, 423, 503) with the one ``{code, detail}`` body
  (``components.schemas.Error``) and the codes of ``service.core.errors.ERROR_CODES``;
- which of them apply follows the rules below (``error_statuses``), checked against
  the access matrix and the routes by the tests.
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


def _body_media(operation: dict[str, Any]) -> set[str]:
    return set(operation.get("requestBody", {}).get("content", {}))


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from what it is:

    - 401 (missing_key, invalid_key): it needs a key;
    - 403 (forbidden): a write, or a read kept to some roles (exports, audit, keys);
    - 404 (not_found): a path parameter (or the body or query) names a resource;
    - 409: a create (already_exists, idempotency_conflict) or a change of an
      assessment (already_voided);
    - 413 (payload_too_large, photo_too_large, too_many_pixels): it takes a body;
    - 415 (unsupported_format, animated_image): it takes a file (a photo or a mask);
    - 422: it takes parameters or a body;
    - 423 (study_locked): a write to a study's data;
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
    if (method == "post" and write) or (
        method in ("put", "patch") and path.startswith("/v1/assessments/")
    ):
        statuses.add(409)
    if media:
        statuses.add(413)
    if "multipart/form-data" in media:
        statuses.add(415)
    if operation.get("parameters") or media:
        statuses.add(422)
    if write and path.startswith(_LOCKABLE_PREFIXES):
        statuses.add(423)
    if secured or path == "/readyz":
        statuses.add(503)
    return sorted(statuses)


def codes_for(status: int) -> list[str]:
    return [code for code, (s, _) in ERROR_CODES.items() if s == status]


def _error_response(status: int, description: str | None) -> dict[str, Any]:
    codes = ", ".join(f"`{c}`" for c in codes_for(status))
    text = description if description and description != "Validation Error" else codes
    if description and description != "Validation Error" and codes:
        text = f"{description} (codes of this status: {codes})"
    return {
        "description": text or "error",
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


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
            responses = operation["responses"]
            for status in error_statuses(method, path, operation):
                given = responses.get(str(status), {})
                responses[str(status)] = {
                    **given,
                    **_error_response(status, given.get("description")),
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
