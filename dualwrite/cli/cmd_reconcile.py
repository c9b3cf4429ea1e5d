"""`reconcile` (and the registration of `status` and `quarantine`, in their own modules).

`reconcile` exits 0 at parity and 3 on drift (after printing its table or JSON); with
`--repair` the exit code describes the state after the repair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from dualwrite.cli.cmd_quarantine import key_text
from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.cli.progress_lines import ProgressLines
from dualwrite.control import ReconcileRecord

if TYPE_CHECKING:
    from reconciler.job import ReconcileResult

DRIFT_EXIT = 3


def register(app: typer.Typer) -> None:
    from dualwrite.cli.cmd_foreign import foreign
    from dualwrite.cli.cmd_quarantine import quarantine
    from dualwrite.cli.cmd_status import status

    app.command("reconcile")(reconcile)
    app.command("status")(status)
    app.command("quarantine")(quarantine)
    app.command("foreign")(foreign)


# --- reconcile ------------------------------------------------------------------------------
def reconcile(
    ctx: typer.Context,
    route: str | None = typer.Option(None, "--route", help="Check one route only."),
    repair: bool = typer.Option(
        False, "--repair", help="Fix each confirmed difference with a conditional write."
    ),
    segments: int = typer.Option(4, "--segments", min=1, max=1000, help="Parallel scan segments."),
    settle: float = typer.Option(
        1.0,
        "--settle",
        min=0.0,
        help="Seconds to let in-flight changes land before re-reading a difference.",
    ),
    exact: bool = typer.Option(
        False,
        "--exact",
        help="Check every item with consistent reads, not only the digest buckets that differ.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Prove parity of mapping(source) against the target (exit 3 on drift).

    One scan of each table is folded into per-bucket digests; buckets whose digests differ
    are then checked item by item (consistent BatchGetItem both ways), and every difference
    is re-read on both sides before it counts.
    """
    from reconciler.job import run_reconcile  # the CLI is where components are wired in

    app = get(ctx)
    migration = app.migration
    with Progress(
        TextColumn("[bold]reconciling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items"),
        TimeElapsedColumn(),
        console=app.err,
        disable=not app.interactive,  # stderr: --json keeps stdout to itself
        transient=True,
    ) as progress:
        task = progress.add_task("reconcile", total=None)
        lines = ProgressLines("reconcile", app.say, enabled=not app.interactive)

        def on_progress(advance: int, total: int) -> None:
            lines.add("scanned", advance, total)
            done = progress.tasks[0].completed + advance
            progress.update(task, advance=advance, total=max(total, done))

        result = run_reconcile(
            migration,
            app.clients,
            app.store,
            routes=[route] if route else None,
            repair=repair,
            segments=segments,
            settle_s=settle,
            exact=exact,
            on_progress=on_progress,
        )
    for r in result.routes:
        if r.metrics_error:
            app.err.print(
                f"warning: {r.route}: parity metrics not published: {escape(r.metrics_error)}"
            )
    if json_out:
        emit_json(result.to_json())
    else:
        print_reconcile(app, result)
    if not result.parity:
        raise typer.Exit(DRIFT_EXIT)


def print_reconcile(app: AppContext, result: ReconcileResult) -> None:
    repair = result.repair
    # one column per route, one row per count: stays readable on an 80-column terminal
    table = Table(title="parity", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True)
    for r in result.routes:
        table.add_column(r.route, justify="right", no_wrap=True)
    rows: list[tuple[str, Callable[[ReconcileRecord], str]]] = [
        ("source items", lambda r: str(r.source_items)),
        ("expected target items", lambda r: str(r.expected_target_items)),
        ("missing", lambda r: _count(r.missing)),
        ("extra", lambda r: _count(r.extra)),
        ("mismatched", lambda r: _count(r.mismatched)),
        ("quarantined", lambda r: str(r.quarantined)),
    ]
    if repair:
        rows += [
            ("repaired", lambda r: str(r.repaired)),
            ("settled by replication", lambda r: str(r.settled)),
        ]
    rows += [
        ("parity %", lambda r: f"{r.parity_percent:.2f}"),
        ("parity", lambda r: "[green]yes[/]" if r.parity else "[red]NO[/]"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in result.routes))
    app.out.print(table)
    samples = [(r.route, d) for r in result.routes for d in r.differences]
    if samples:
        shown = min(len(samples), 30)
        found = sum(r.missing + r.extra + r.mismatched for r in result.routes)
        diffs = Table(title=f"differences (the first {shown} of {found})", title_justify="left")
        for col in ("route", "kind", "target key", "attributes", "repaired"):
            diffs.add_column(col)
        for route, d in samples[:30]:
            attrs = d.attributes
            text = ", ".join(attrs[:6]) + (f" (+{len(attrs) - 6})" if len(attrs) > 6 else "")
            # keys and attribute names are the user's data: "rack[/]7" is no markup
            repaired = "yes" if d.repaired else "-"
            diffs.add_row(route, d.kind, escape(key_text(d.key)), escape(text), repaired)
        app.out.print(diffs)
    if repair:
        for r in result.routes:
            for note in r.notes:
                app.err.print(f"note: {r.route}: {escape(note)}")
    resolved = sum(r.quarantine_resolved for r in result.routes)
    if resolved:
        app.out.print(f"{resolved} quarantine entr{'y' if resolved == 1 else 'ies'} resolved")
    unfilled = [r.route for r in result.routes if not app.store.is_backfilled(r.route)]
    if unfilled:  # the next step is the backfill, not a repair (nor a cutover)
        app.out.print(
            f"{', '.join(unfilled)}: not backfilled yet: run `dualwrite backfill` (the cutover "
            "gate asks for a completed backfill; parity from a repair alone does not count)",
            markup=False,
        )
    for r in result.routes:
        for line in r.advice:
            app.out.print(line, markup=False, soft_wrap=True)  # keys and reasons kept whole
    # a (re-)repair is advised only when one can fix something left (else the advice says)
    helps = any(r.repair_helps for r in result.routes if not r.parity)
    if result.parity:
        app.out.print(f"[green]parity[/]: every route matches ({result.duration_s:.1f}s)")
    elif unfilled and not repair:
        app.out.print("[red]drift[/]: expected before the backfill")
    elif repair and helps:
        app.out.print(
            "[red]drift remains[/] after the repair: a concurrent change won a race or an item "
            "could not be repaired safely; run `dualwrite reconcile --repair` again"
        )
    elif repair:
        app.out.print(
            "[red]drift remains[/] after the repair: no repair can fix what is left; "
            "do what is said above"
        )
    elif helps:
        app.out.print("[red]drift[/]: run `dualwrite reconcile --repair` to fix it")
    else:
        app.out.print("[red]drift[/]: a repair cannot fix it; do what is said above")


def _count(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"
