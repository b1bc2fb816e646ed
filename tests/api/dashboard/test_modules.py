"""The dashboard's route is thin (issue 19): what a page shows, its plots and its words
are plain modules that a test, the CLI or another page can use without the web stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PLAIN = (
    "service.api.auditlog",
    "service.api.comparison",
    "service.api.figures",
    "service.api.overview",
    "service.api.wording",
    "service.domain.followup",
)


def test_the_pages_contents_import_no_web_framework() -> None:
    """Importing them loads neither FastAPI nor Starlette. Checked on ``sys.modules`` in
    a fresh process, so an import inside a dependency counts."""
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PLAIN)
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
