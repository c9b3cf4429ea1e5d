"""`backfill` (issue 4 wires it)."""

from __future__ import annotations

import typer

from dualwrite.errors import DualwriteError


def register(app: typer.Typer) -> None:
    app.command("backfill")(backfill)


def backfill(ctx: typer.Context) -> None:
    """Copy every existing item of each route into its target."""
    raise DualwriteError("backfill is not built yet")
