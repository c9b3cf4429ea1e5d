"""`replicate` (issue 3 wires it)."""

from __future__ import annotations

import typer

from dualwrite.errors import DualwriteError


def register(app: typer.Typer) -> None:
    app.command("replicate")(replicate)


def replicate(ctx: typer.Context) -> None:
    """Apply the sources' stream changes to the targets."""
    raise DualwriteError("replicate is not built yet")
