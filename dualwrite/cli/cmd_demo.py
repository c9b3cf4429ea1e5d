"""`demo`: the whole migration on a private embedded emulator (see demo_flow)."""

from __future__ import annotations

import typer

from dualwrite.cli.context import get
from dualwrite.cli.signals import sigterm_as_interrupt


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    servers: int = typer.Option(2000, "--servers", min=1, help="Servers to seed."),
    memberships: int = typer.Option(6000, "--memberships", min=1, help="Memberships to seed."),
    port: int = typer.Option(0, "--port", help="Emulator port on 127.0.0.1 (0: a free one)."),
    traffic_rate: float = typer.Option(40.0, "--traffic-rate", min=1, help="Live writes/s."),
) -> None:
    """Run the whole migration on a private embedded emulator with generated data."""
    from dualwrite.cli.demo_flow import DemoOptions, run_demo

    options = DemoOptions(servers, memberships, port, traffic_rate=traffic_rate)
    # SIGTERM as Ctrl-C: the private emulator is stopped on the way out
    with sigterm_as_interrupt():
        code = run_demo(get(ctx), options)
    raise typer.Exit(code)
