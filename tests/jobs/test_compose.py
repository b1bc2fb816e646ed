"""docker-compose.yml cannot be started here (no Docker daemon on these machines); what
can be checked is that it asks woundscope for what exists: commands, settings, and
the services the README promises (PostgreSQL, RabbitMQ, an S3 store, the service, two
workers)."""

from __future__ import annotations

import yaml

from service.commands import COMMANDS
from service.config import Settings
from tests.jobs.study import ROOT


def test_compose_file_runs_the_service_and_two_workers_on_real_parts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "rabbitmq", "minio", "api", "worker", "migrate"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    commands = {name for name, _, _ in COMMANDS}
    settings = {f"WOUNDSCOPE_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, list) and command[0] == "woundscope":
            assert command[1] in commands, f"{name}: woundscope {command[1]} does not exist"
        env = service.get("environment") or {}
        unknown = [k for k in env if k.startswith("WOUNDSCOPE_") and k not in settings]
        assert not unknown, f"{name}: {unknown} are not settings"
    env = services["worker"]["environment"]
    assert env["WOUNDSCOPE_BROKER_URL"].startswith("amqp://")
    assert env["WOUNDSCOPE_DATABASE_URL"].startswith("postgresql")
    assert env["WOUNDSCOPE_STORAGE_URL"].startswith("s3://")
    Settings(
        **{
            k.removeprefix("WOUNDSCOPE_").lower(): v
            for k, v in env.items()
            if k.startswith("WOUNDSCOPE_")
        }
    )
