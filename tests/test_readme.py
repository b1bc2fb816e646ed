"""The README stays true: it lists every error code and quality flag, and its two commands exist."""

from __future__ import annotations

import re

from service.core.errors import ERROR_CODES
from service.core.measure import QUALITY_CODES
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_lists_every_error_code_with_its_status() -> None:
    for code, (status, _) in ERROR_CODES.items():
        assert re.search(rf"\| `{code}` \| {status} \|", README), f"README lacks error code {code}"


def test_readme_lists_every_quality_flag() -> None:
    for code in QUALITY_CODES:
        assert f"`{code}`" in README, f"README lacks quality flag {code}"


def test_the_two_commands_are_make_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "make run" in README and "make test" in README
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
