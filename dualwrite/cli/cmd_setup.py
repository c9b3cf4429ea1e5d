"""`local`, `seed`, `plan`, `prepare`."""

from __future__ import annotations

import time

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws.sampling import estimate_routes
from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.cli.signals import sigterm_as_interrupt
from dualwrite.control import Phase
from dualwrite.cutover.references import references_table
from dualwrite.emulator import Emulator
from dualwrite.errors import ConfigError
from dualwrite.estimate import Estimate, rate_text


def register(app: typer.Typer) -> None:
    app.command("local")(local)
    app.command("seed")(seed)
    app.command("plan")(plan)
    app.command("prepare")(prepare)


def local(
    ctx: typer.Context,
    port: int = typer.Option(
        4566, "--port", "-p", min=0, max=65535, help="Port on 127.0.0.1 (0 picks a free one)."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Show the emulator's request log."),
) -> None:
    """Run the embedded AWS emulator (moto server) on 127.0.0.1 until Ctrl-C (or SIGTERM)."""
    app = get(ctx)
    emulator = Emulator(port=port, quiet=not verbose)
    code = 0
    with sigterm_as_interrupt():
        try:
            endpoint = emulator.start()
            app.out.print(f"embedded AWS emulator listening on {endpoint}")
            app.out.print(
                f"use it with:  dualwrite --endpoint-url {endpoint} ...   "
                f"(or export AWS_ENDPOINT_URL={endpoint})"
            )
            app.out.print("Ctrl-C stops it; its data lives in memory only.")
            code = emulator.wait()
        except KeyboardInterrupt:
            code = 0
        finally:
            emulator.stop()
    raise typer.Exit(code)


def _not_under_way(app: AppContext, seeded: set[str]) -> None:
    """Refuse to seed tables a migration has begun to copy: seed puts its items back as
    generated, and replication carries them on (after a rollback it reverted a server's
    update and re-created a deleted one)."""
    if not app.control_exists:
        return
    busy = [
        f"{r.name} ({phase.phase.value})"
        for r in app.migration.routes
        if r.source in seeded and (phase := app.store.phase(r.name)).phase is not Phase.PENDING
    ]
    if busy:
        raise ConfigError(
            f"seed would overwrite {', '.join(sorted(seeded))}, which a migration is copying "
            f"(route {', '.join(busy)}): seed an emulator of its own, or use another "
            "control_table"
        )


def seed(
    ctx: typer.Context,
    servers: int = typer.Option(..., "--servers", min=0, help="Servers to create."),
    memberships: int = typer.Option(..., "--memberships", min=0, help="Memberships to create."),
    seed_value: int = typer.Option(1, "--seed", help="Random seed (same seed, same data)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create ServersTable and UserMembershipTable if missing and fill them with varied data."""
    app = get(ctx)
    if memberships and not servers:  # a membership is of a server: it made none, silently
        raise ConfigError("--memberships needs --servers 1 or more (a membership is of a server)")
    if app.config_path.exists():  # seed works without one; with one, it must be this data's
        sources = {r.source for r in app.migration.routes}
        if not sources & {seeding.SERVERS_TABLE, seeding.MEMBERSHIPS_TABLE}:
            raise ConfigError(
                f"seed writes sample servers and memberships into {seeding.SERVERS_TABLE} and "
                f"{seeding.MEMBERSHIPS_TABLE}, and {app.config_path} migrates neither "
                f"({', '.join(sorted(sources))}): nothing of it to seed (the README says how "
                "to make sample tables for the Stripe rename)"
            )
        _not_under_way(app, sources & {seeding.SERVERS_TABLE, seeding.MEMBERSHIPS_TABLE})
    started = time.monotonic()
    data = seeding.generate(servers, memberships, seed_value)
    created = seeding.ensure_tables(app.clients)
    total = len(data.servers) + len(data.memberships)
    with Progress(
        TextColumn("[bold]seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=app.err,
        disable=not app.interactive,  # stderr: --json keeps stdout to itself
        transient=True,
    ) as progress:
        task = progress.add_task("seed", total=total)
        for table, items in (
            (seeding.SERVERS_TABLE, data.servers),
            (seeding.MEMBERSHIPS_TABLE, data.memberships),
        ):
            seeding.write_items(
                app.clients, table, items, on_batch=lambda n: progress.advance(task, n)
            )
    result = {
        "created_tables": created,
        "servers": len(data.servers),
        "memberships": len(data.memberships),
        "duration_s": round(time.monotonic() - started, 3),
    }
    if json_out:
        emit_json(result)
    else:
        app.out.print(
            f"seeded {result['servers']} servers into {seeding.SERVERS_TABLE} and "
            f"{result['memberships']} memberships into {seeding.MEMBERSHIPS_TABLE} "
            f"in {result['duration_s']:.1f}s"
            + (f" (created {', '.join(created)})" if created else "")
        )


def _actions_table(title: str, actions: list[preparing.Action]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("table")
    table.add_column("step")
    table.add_column("change")
    table.add_column("detail")
    for a in actions:
        table.add_row(a.table, a.action, "yes" if a.needed else "-", a.detail)
    return table


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def _estimate_table(estimates: dict[str, Estimate]) -> Table:
    table = Table(title="backfill estimate (on-demand)", title_justify="left")
    for col in ("route", "items", "size", "write units", "read units", "time", "cost"):
        table.add_column(col, justify="left" if col == "route" else "right")
    for name, e in estimates.items():
        items = f"{e.items:,}" + ("" if e.exact else " ~")
        table.add_row(
            name,
            items,
            _size(e.bytes),
            f"{e.write_units:,}",
            f"{e.read_units:,}",
            f"{_duration(e.backfill_seconds)} at {rate_text(e.write_budget)} WCU/s",
            f"${e.cost_usd:,.2f}" if e.cost_usd >= 1 else f"${e.cost_usd:.4f}",
        )
    return table


def plan(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    no_backup: bool = typer.Option(False, "--no-backup", help="Plan without backups."),
    max_wcu: float | None = typer.Option(
        None, "--max-wcu", min=0.001, help="The backfill's write budget for the estimate."
    ),
) -> None:
    """Show what prepare would do, per route and table, and what the backfill would cost."""
    app = get(ctx)
    result = preparing.analyze(app.migration, app.clients, backup=not no_backup)
    estimates = estimate_routes(app.clients, app.migration, max_wcu=max_wcu)
    found = preparing.references(app.migration, app.clients)
    if json_out:
        data = result.to_json()
        for route in data["routes"]:
            route["estimate"] = estimates[route["route"]].to_json()
        data["references"] = [r.to_json() for r in found.references]
        data["references_skipped"] = [k.to_json() for k in found.skipped]
        emit_json(data)
        return
    routes = Table(title="routes", title_justify="left")
    for col in ("route", "source", "target", "mapping", "source key", "items (approx.)"):
        routes.add_column(col)
    for r in result.routes:
        routes.add_row(r.route, r.source, r.target, r.mapping, r.source_key, str(r.approx_items))
    app.out.print(routes)
    app.out.print(_actions_table("prepare would", result.actions))
    app.out.print(_estimate_table(estimates))
    app.out.print(references_table(found.references))
    for skipped in found.skipped:
        app.err.print(f"note: could not look for references in {skipped.kind}: {skipped.reason}")
    n = len(result.changes)
    app.out.print(f"{n} change(s) to make" if n else "nothing to change: prepare is done")


def prepare(
    ctx: typer.Context,
    no_backup: bool = typer.Option(False, "--no-backup", help="Skip the on-demand backups."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Streams and PITR on the sources, backups, control table and targets. Idempotent."""
    app = get(ctx)
    migration = app.migration
    result = preparing.analyze(migration, app.clients, backup=not no_backup)
    say = (lambda _m: None) if json_out else app.say
    done = preparing.apply(migration, app.clients, result, backup=not no_backup, say=say)
    if json_out:
        emit_json(
            {
                "changed": bool(done),
                "actions": [a.to_json() for a in done],
                "plan": result.to_json(),
            }
        )
        return
    if not done:
        app.out.print("nothing to change: streams, PITR, control table and targets are ready")
        return
    app.out.print(_actions_table("prepare did", done))
    app.out.print("ready: run `dualwrite backfill`, with `dualwrite replicate` running")
