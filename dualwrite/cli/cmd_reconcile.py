"""`reconcile` and `status` (issue 5 wires them)."""

from __future__ import annotations

import typer

from dualwrite.errors import DualwriteError


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile)
    app.command("status")(status)


def reconcile(ctx: typer.Context) -> None:
    """Prove parity of mapping(source) against the target."""
    raise DualwriteError("reconcile is not built yet")


def status(ctx: typer.Context) -> None:
    """Phases, checkpoints, replication lag, quarantine, last reconcile."""
    raise DualwriteError("status is not built yet")
