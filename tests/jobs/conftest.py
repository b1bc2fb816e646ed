"""Fixtures of the job engine's tests: a throwaway PostgreSQL database, the machine's
RabbitMQ and Redis (a missing one skips here and fails in CI, through ``need``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.persistence.db import upgrade
from tests.api.conftest import create_postgres_database, drop_postgres_database
from tests.conftest import need, port_open
from tests.jobs.study import Deployment, running

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database for one test."""
    url = create_postgres_database(postgres_url)
    upgrade(url)
    yield url
    drop_postgres_database(url)


def broker_url(kind: str) -> str:
    if kind == "amqp":
        need(port_open("127.0.0.1", 5672), "RabbitMQ is not listening on 127.0.0.1:5672")
        return AMQP_URL
    need(port_open("127.0.0.1", 6379), "Redis is not listening on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def amqp(pg_database: str, tmp_path: Path) -> Iterator[Deployment]:
    """A deployment on PostgreSQL and RabbitMQ, its own queue; workers stopped after."""
    with running(Deployment(tmp_path, pg_database, broker_url=broker_url("amqp"))) as dep:
        yield dep


@pytest.fixture(params=["amqp", "redis"])
def broker(
    request: pytest.FixtureRequest, pg_database: str, tmp_path: Path
) -> Iterator[Deployment]:
    """The same on each broker."""
    with running(Deployment(tmp_path, pg_database, broker_url=broker_url(request.param))) as dep:
        yield dep
