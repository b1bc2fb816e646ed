"""Exports as file downloads: the API's export routes and the dashboard's links answer
the same file (``service.domain.exporting.export_file``), with the same audit entry."""

from __future__ import annotations

from fastapi.responses import Response
from sqlalchemy.orm import Session

from service.config import Settings
from service.domain import exporting
from service.domain.auth import Caller
from service.persistence.orm import Study


def download(
    session: Session, caller: Caller, study: Study, name: str, settings: Settings
) -> Response:
    """The export ``name`` (``exporting.EXPORTS``) as an attachment."""
    file = exporting.export_file(session, caller, study, name, settings)
    return Response(
        file.body,
        media_type=file.media_type,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"'},
    )
