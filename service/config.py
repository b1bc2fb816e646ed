"""Service configuration from the environment (prefix ``WOUNDSCOPE_``), validated at start.

No import-time globals: ``get_settings()`` is cached and the app factory takes a
``Settings`` so tests pass their own.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.core.imaging import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from service.core.measure import QualityLimits

BROKER_SCHEMES = ("amqp://", "amqps://", "pyamqp://", "redis://", "rediss://")
"""The brokers the job engine (Celery) is run against: RabbitMQ and Redis."""


URL_EXAMPLES = {
    "fhir_base_url": "https://ehr.example/fhir",
    "public_url": "https://woundscope.example",
}
"""The http(s) base settings and the example each one's refusal gives."""


class ModelSettings(BaseSettings):
    """What finding and running a model reads: all that a model-only command (predict,
    measure, evaluate) needs, so a database or storage setting it never uses cannot
    stop it. ``Settings`` has these fields too."""

    model_config = SettingsConfigDict(
        env_prefix="WOUNDSCOPE_", env_nested_delimiter="__", extra="ignore"
    )

    models_dir: str = Field(
        default="",
        description="Extra folders of installed models, separated by os.pathsep (':' on"
        " Linux), looked in before the bundled models.",
    )
    ort_threads: int = Field(default=0, ge=0, le=256)
    """ONNX Runtime threads per model run; 0 = its default (all cores)."""

    @property
    def models_dirs(self) -> list[Path]:
        """``models_dir`` as folders (none when it is empty)."""
        return [Path(p) for p in self.models_dir.split(os.pathsep)] if self.models_dir else []


class Settings(ModelSettings):
    """Every setting of the service (the model ones from ``ModelSettings`` included)."""

    data_dir: Path = Field(
        default=Path("~/.local/share/woundscope"),
        description="Where the SQLite file and the photos live by default.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty = a SQLite file in the data dir.",
    )
    storage_url: str = Field(
        default="",
        description="file:///path or s3://bucket/prefix; empty = <data_dir>/photos.",
    )
    s3_endpoint_url: str = Field(
        default="",
        description="Endpoint of an S3-compatible store (MinIO, …); empty = AWS, or boto's"
        " own AWS_ENDPOINT_URL when that is set.",
    )
    model: str = Field(
        default="",
        description="Default model (folder or installed id); empty = highest installed.",
    )
    max_upload_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1024)
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=10_000)
    inference_workers: int = Field(default=2, ge=1, le=64)
    """Threads doing CPU-bound work (decode, segment, measure, overlay) at once."""
    inference_queue: int = Field(default=8, ge=0, le=1024)
    """Jobs that may wait for a worker; beyond workers + queue the service answers 503."""
    retry_after_s: int = Field(default=2, ge=1, le=600)
    quality: QualityLimits = Field(default_factory=QualityLimits)
    """Quality-flag thresholds, e.g. WOUNDSCOPE_QUALITY__MAX_TILT_DEG=30."""
    photo_jpeg_quality: int = Field(default=95, ge=70, le=100)
    page_size_max: int = Field(default=500, ge=1)
    clinic_timezone: str = Field(
        default="",
        description="IANA zone of the clinics' wall-clock capture times (Europe/Paris);"
        " empty = unknown: exports then give a capture's date, not its time.",
    )
    fhir_base_url: str = Field(
        default="",
        description="FHIR server base the export's Bundle is loaded into (fullUrl ="
        " base/Type/id); empty = urn:uuid fullUrls.",
    )
    public_url: str = Field(
        default="",
        description="This service's address as its users reach it (https://woundscope.example):"
        " the FHIR export's photo URLs are absolute under it; empty = paths (/v1/...).",
    )
    broker_url: str = Field(
        default="",
        description="Celery broker for batch work (amqp://user:pass@host:5672// or"
        " redis://host:6379/0); empty = batch work runs in the process that asks for it.",
    )
    broker_queue: str = Field(
        default="woundscope",
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="The queue batch work goes through: deployments that share a broker"
        " (staging, production) each use their own.",
    )
    log_level: str = Field(default="INFO")
    log_json: bool = True

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(value).expanduser()

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("clinic_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"clinic_timezone {value!r} is not an IANA time zone (e.g. Europe/Paris)"
                ) from None
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value and not value.startswith(BROKER_SCHEMES):
            raise ValueError(
                "broker_url must be amqp://user:password@host:5672// (RabbitMQ) or"
                " redis://host:6379/0"
            )
        return value

    @field_validator("fhir_base_url", "public_url")
    @classmethod
    def _http_base(cls, value: str, info: ValidationInfo) -> str:
        """An http(s) address without its trailing slash (paths are appended to it)."""
        if value and not value.startswith(("https://", "http://")):
            name = str(info.field_name)
            raise ValueError(f"{name} must be an http(s) URL, e.g. {URL_EXAMPLES[name]}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url or not self.storage_url:
            problem = data_dir_problem(self.data_dir)
            if problem:
                raise ValueError(f"WOUNDSCOPE_DATA_DIR={str(self.data_dir)!r}: {problem}")
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'woundscope.db'}"
        if not self.storage_url:
            self.storage_url = (self.data_dir / "photos").resolve().as_uri()
        if not self.database_url.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"WOUNDSCOPE_DATABASE_URL {self.database_url.split(':')[0]}: is not supported;"
                " use sqlite:///path or postgresql+psycopg://user@host/db"
            )
        if not self.storage_url.startswith(("file://", "s3://")):
            raise ValueError("WOUNDSCOPE_STORAGE_URL must be file:///path or s3://bucket/prefix")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def clinic_tz(self) -> ZoneInfo | None:
        return ZoneInfo(self.clinic_timezone) if self.clinic_timezone else None


def environment_data_dir() -> Path:
    """The data dir that ``WOUNDSCOPE_DATA_DIR`` names (or the default), absolute; for
    naming the variable in an error when ``Settings`` itself cannot be built."""
    default = Settings.model_fields["data_dir"].default
    return Path(os.environ.get("WOUNDSCOPE_DATA_DIR") or default).expanduser().absolute()


def data_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot hold the SQLite file and the photos (a file, a folder under a
    file, a folder this user may not write into), or None. Creates nothing."""
    if path.exists():
        if not path.is_dir():
            return "is a file, not a folder: name a folder (it is created if missing)"
        target = path
    else:
        target = path.parent
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            return f"{target} is a file, so the folder cannot be created: name another folder"
    if not os.access(target, os.W_OK | os.X_OK):
        return f"{target} is not writable by this user: name a folder you can write to"
    return None


# WOUNDSCOPE_* variables read outside Settings (by the test suite, benchmarks and
# notebooks): known, so not reported as misspelled.
OTHER_VARIABLES = {
    "TEST_POSTGRES_URL",
    "FUSEG",
    "CHROMIUM",
    "FUZZ_EXAMPLES",
    "ADMIN_KEY",
    "NB_IMAGES",
    "NB_LABELS",
    "EXPORT_CSV",
}


S = TypeVar("S", bound=ModelSettings)


class ConfigError(ValueError):
    """A WOUNDSCOPE_* variable holds a value the service cannot use; names it."""


def _from_env(kind: type[S]) -> S:
    """``kind()`` from the environment; ``ConfigError`` naming the variable and its
    value when one is wrong (pydantic's own message names only the field)."""
    from pydantic import ValidationError

    try:
        return kind()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = "__".join(str(p) for p in error.get("loc", ()) if p != "__root__")
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            if not loc:  # a check of several settings: its message names the variables
                problems.append(message)
                continue
            name = f"WOUNDSCOPE_{loc.upper()}"
            value = os.environ.get(name)
            shown = f"={value!r}" if value is not None else ""
            problems.append(f"{name}{shown}: {message}")
        raise ConfigError("; ".join(problems)) from None


def settings_from_env() -> Settings:
    """``Settings()`` from the environment, or ``ConfigError`` naming what is wrong."""
    return _from_env(Settings)


def model_settings_from_env() -> ModelSettings:
    """``ModelSettings()`` from the environment, or ``ConfigError`` naming what is wrong:
    for the commands that only find and run a model."""
    return _from_env(ModelSettings)


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """WOUNDSCOPE_* variables that no setting reads (a misspelling is silently ignored
    otherwise), e.g. ``WOUNDSCOPE_MODLE``."""
    env = os.environ if environ is None else environ
    known = {name.upper() for name in Settings.model_fields} | OTHER_VARIABLES
    unknown = []
    for name in sorted(env):
        if not name.startswith("WOUNDSCOPE_"):
            continue
        field = name.removeprefix("WOUNDSCOPE_")
        if field.split("__", 1)[0] not in known:
            unknown.append(name)
    return unknown


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return settings_from_env()
