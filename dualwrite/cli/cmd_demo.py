"""`demo` (issue 8 grows it): the whole migration on a private embedded emulator."""

from __future__ import annotations

import typer

from dualwrite.cli.app_demo import run_demo
from dualwrite.cli.context import get


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    servers: int = typer.Option(2000, "--servers", min=1),
    memberships: int = typer.Option(6000, "--memberships", min=1),
    port: int = typer.Option(0, "--port", help="Emulator port (0 picks a free one)."),
) -> None:
    """Run the whole migration on a private embedded emulator with generated data."""
    raise typer.Exit(run_demo(get(ctx), servers=servers, memberships=memberships, port=port))
