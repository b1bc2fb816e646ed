"""Where the bundled models and sample photos are, in a source checkout and installed.

In a checkout (or an editable install) they are the repository's ``models/`` and
``data/samples/``. A built wheel (``pip install .``, the Docker image) carries copies
inside the package, under ``service/_data/`` (``setup.py`` puts them there), so an
installed ``woundscope`` serves the bundled model and runs ``demo`` and ``simulate``
from any folder.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
INSTALLED_DATA_DIR = PACKAGE_DIR / "_data"
"""What a wheel ships: ``models/<name>-<version>/`` and ``samples/``."""


def _is_checkout() -> bool:
    return (CHECKOUT_DIR / "pyproject.toml").is_file() and (CHECKOUT_DIR / "models").is_dir()


def bundled_models_dir() -> Path:
    """The folder of the models that come with woundscope."""
    if _is_checkout():
        return CHECKOUT_DIR / "models"
    return INSTALLED_DATA_DIR / "models"


def samples_dir() -> Path:
    """The sample photos (``fuseg/images``, ``fuseg/labels``, ``marker/``)."""
    if _is_checkout():
        return CHECKOUT_DIR / "data" / "samples"
    return INSTALLED_DATA_DIR / "samples"
