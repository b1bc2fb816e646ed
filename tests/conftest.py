"""Shared test fixtures and the CI rule: in CI, a missing service fails instead of skipping.

``need(condition, reason)`` is the one way a test skips for something missing
(PostgreSQL, Chromium, the FUSeg copy, torch). With ``CI=true`` it fails, because CI
has all of them; only ``gpu`` tests may skip there.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "fuseg"
FUSEG = Path(os.environ.get("WOUNDSCOPE_FUSEG", ROOT.parent / "shared" / "datasets" / "fuseg2021"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "WOUNDSCOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CHROMIUM = Path(os.environ.get("WOUNDSCOPE_CHROMIUM", "/usr/bin/chromium"))


def need(condition: bool, reason: str, *, allowed_in_ci: bool = False) -> None:
    """Skip (locally) or fail (in CI) when ``condition`` is false."""
    if condition:
        return
    if IN_CI and not allowed_in_ci:
        pytest.fail(f"CI must run this test, but: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def fuseg_dir() -> Path:
    need((FUSEG / "validation" / "images").is_dir(), f"the FUSeg copy is not at {FUSEG}")
    return FUSEG


@pytest.fixture(scope="session")
def postgres_url() -> str:
    need(port_open("127.0.0.1", 5432), "PostgreSQL is not listening on 127.0.0.1:5432")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    need(CHROMIUM.exists(), f"Chromium is not at {CHROMIUM} (apt-get install chromium)")
    need(has_module("playwright"), "playwright is not installed (the [dev] extra)")
    return CHROMIUM


@pytest.fixture(scope="session")
def torch_available() -> bool:
    need(has_module("torch"), "torch is not installed (the [train] extra)")
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_gpu = shutil.which("nvidia-smi") is not None
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU on this machine"))
