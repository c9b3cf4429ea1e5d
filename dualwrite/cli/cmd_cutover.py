"""`cutover`, `rollback`, `decommission` (issue 6 wires them)."""

from __future__ import annotations

import typer

from dualwrite.errors import DualwriteError


def register(app: typer.Typer) -> None:
    app.command("cutover")(cutover)
    app.command("rollback")(rollback)
    app.command("decommission")(decommission)


def cutover(ctx: typer.Context) -> None:
    """Re-point Lambda functions from the source tables to the targets (gated)."""
    raise DualwriteError("cutover is not built yet")


def rollback(ctx: typer.Context) -> None:
    """Put every re-pointed function back exactly as it was."""
    raise DualwriteError("rollback is not built yet")


def decommission(ctx: typer.Context) -> None:
    """Back up and delete the old tables after the observation window (gated)."""
    raise DualwriteError("decommission is not built yet")
