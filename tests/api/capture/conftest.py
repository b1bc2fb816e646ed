"""The API fixtures (a real service per backend, a fresh study with keys of every role)."""

from tests.api.conftest import backend_url, marker_jpeg, service, trial  # noqa: F401
