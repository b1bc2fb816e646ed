"""The OpenAPI pages, /docs (Swagger UI) and /redoc, served from the service's own files
(``service/api/docs/vendor``, see its ``SOURCE.md``): no CDN, and the dashboard's
security headers (scripts from this origin only, never framed, never cached)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from service.api.sessions import SECURITY_HEADERS

router = APIRouter(include_in_schema=False)

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
ASSETS = {
    "swagger-ui-bundle.js": DOCS_DIR / "vendor" / "swagger-ui-bundle.js",
    "swagger-ui.css": DOCS_DIR / "vendor" / "swagger-ui.css",
    "redoc.standalone.js": DOCS_DIR / "vendor" / "redoc.standalone.js",
    "swagger-init.js": DOCS_DIR / "swagger-init.js",
}
DOCS_HEADERS = {
    **SECURITY_HEADERS,
    # Redoc renders its search in a worker made from a blob: URL.
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"]
    + "; worker-src 'self' blob:",
}

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>woundscope API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-init.js"></script></body></html>
"""
REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>woundscope API</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/static/redoc.standalone.js"></script></body></html>
"""


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE, headers=DOCS_HEADERS)


@router.get("/redoc", response_class=HTMLResponse)
def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE, headers=DOCS_HEADERS)


@router.get("/docs/static/{name}")
def docs_asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no file {name}")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
