"""Two independent FHIR validators for the export tests.

- ``schema_errors``: the official HL7 FHIR R4 JSON schema (shipped gzipped beside this
  file, see ``fhir/SOURCE.md``) with ``jsonschema``; each entry's resource is also
  checked against its own definition, so an error names the resource and the path.
- ``model_errors``: fhir.resources' R4B models (pydantic; R4B is R4 with fixes, and
  the resources exported here, Media included, are the same in both): every resource
  parsed on its own and the whole Bundle.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

SCHEMA = Path(__file__).parent / "fhir" / "fhir.schema.json.gz"


@functools.cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(gzip.decompress(SCHEMA.read_bytes()))
    return schema


@functools.cache
def _validator(definition: str | None) -> Any:
    schema = _schema()
    if definition is not None:
        # The same document (so every $ref resolves), rooted at one definition.
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
        schema.pop("oneOf", None)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _describe(error: jsonschema.ValidationError) -> str:
    error = best_match([error]) or error
    path = "/".join(str(p) for p in error.absolute_path)
    return f"{path or '(root)'}: {error.message[:300]}"


def schema_errors(bundle: dict[str, Any]) -> list[str]:
    """Errors of the official R4 JSON schema over the Bundle and each resource in it."""
    errors = [f"Bundle {_describe(e)}" for e in _validator(None).iter_errors(bundle)]
    for i, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType", "?")
        errors += [
            f"entry[{i}] {kind}/{resource.get('id')} {_describe(e)}"
            for e in _validator(kind).iter_errors(resource)
        ]
    return errors


def model_errors(bundle: dict[str, Any]) -> list[str]:
    """Errors of fhir.resources' R4B models over each resource and the whole Bundle."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    errors = []
    for i, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType", "?")
        try:
            get_fhir_model_class(kind).model_validate(resource)
        except (ValidationError, KeyError, ValueError) as exc:
            errors.append(f"entry[{i}] {kind}/{resource.get('id')}: {exc}")
    try:
        get_fhir_model_class("Bundle").model_validate(bundle)
    except (ValidationError, ValueError) as exc:
        errors.append(f"Bundle: {exc}")
    return errors
