"""One module per subcommand; ``register`` adds them all to the typer app."""

from __future__ import annotations

import importlib

import typer

# (command name, module under service.commands, function name)
COMMANDS: list[tuple[str, str, str]] = [
    ("serve", "serve", "serve"),
    ("predict", "predict", "predict"),
    ("measure", "measure", "measure"),
    ("marker", "marker", "marker"),
    ("keys", "keys", "app"),
    ("db", "db", "app"),
    ("train", "train", "train"),
    ("evaluate", "evaluate", "evaluate"),
    ("export", "export", "export"),
    ("reanalyze", "reanalyze", "reanalyze"),
    ("worker", "worker", "worker"),
    ("jobs", "jobs", "app"),
    ("simulate", "simulate", "simulate"),
    ("demo", "demo", "demo"),
    ("fsck", "fsck", "fsck"),
    ("backup", "backup", "backup"),
    ("audit", "audit", "app"),
]


def register(app: typer.Typer) -> None:
    for name, module_name, attr in COMMANDS:
        try:
            module = importlib.import_module(f"service.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"service.commands.{module_name}":
                continue  # not built yet
            raise
        target = getattr(module, attr)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
