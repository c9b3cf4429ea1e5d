"""`backfill`: copy every existing item of each route into its target (backfill.job)."""

from __future__ import annotations

import threading
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from backfill.job import run_backfill
from backfill.results import BackfillResult
from backfill.route import check_control_table
from dualwrite.aws.sampling import estimate_routes
from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.cli.progress_lines import ProgressLines
from dualwrite.cli.signals import stop_on_signals
from dualwrite.control import Phase, iso
from dualwrite.errors import SafetyGateError
from dualwrite.estimate import over_retention, refusal

#: a second Ctrl-C ends the command without its summary, once the pages in hand are
#: written (a worker thread cannot be interrupted)
STOPPING = (
    "stopping: each segment saves its checkpoint after the page in hand (Ctrl-C again: no summary)"
)

#: control-table partition of accepted risks (sk "<iso time>#<route>")
RISK_PK = "RISK#RETENTION"


def register(app: typer.Typer) -> None:
    app.command("backfill")(backfill)


class _Rate(ProgressColumn):
    """Items per second, the average of this run: progress comes a scan page at a time, so
    rich's windowed speed (two samples a moment apart) overstated it some 80 times."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        done = task.completed - float(task.fields.get("first", 0))
        speed = done / elapsed if elapsed else None
        return Text(f"{speed:,.0f} items/s" if speed else "- items/s")


class _Count(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"~{task.total:,.0f}" if task.total else "?"
        return Text(f"{task.completed:,.0f} / {total}")


def backfill(
    ctx: typer.Context,
    route: str | None = typer.Option(None, "--route", help="Only this route."),
    segments: int | None = typer.Option(
        None, "--segments", min=1, help="Parallel scan segments (default: from the table size)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker threads (default: one per segment, at most 8)."
    ),
    max_wcu: float | None = typer.Option(
        None, "--max-wcu", min=0.001, help="Cap on write capacity units per second."
    ),
    restart: bool = typer.Option(
        False, "--restart", help="Clear the checkpoints and start over (default: resume)."
    ),
    accept_retention_risk: bool = typer.Option(
        False,
        "--accept-retention-risk",
        help="Backfill even when the estimate exceeds 80% of the stream's 24 h retention "
        "(journaled in the control table).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Copy every existing item of each route into its target, resumably."""
    app = get(ctx)
    try:
        accepted = retention_gate(app, route, max_wcu, accept=accept_retention_risk)
    except SafetyGateError as exc:
        if json_out:  # a refusal is still one JSON object on stdout (and one line on stderr)
            emit_json({"refused": True, "reason": str(exc)})
        raise
    stop = threading.Event()
    with stop_on_signals(stop, lambda: app.err.print(STOPPING)):
        result = backfill_with_progress(
            app,
            quiet=json_out,
            routes=None if route is None else [route],
            segments=segments,
            workers=workers,
            max_wcu=max_wcu,
            restart=restart,
            stop=stop,
        )
    interrupted = stop.is_set() and not all(r.complete for r in result.routes)
    if json_out:
        data = result.to_json()
        if accepted:
            data["retention_risk_accepted"] = accepted
        if interrupted:
            data["interrupted"] = True
        emit_json(data)
    else:
        print_result(app, result, interrupted=interrupted)
    if interrupted:
        app.err.print(
            "interrupted: every segment saved its last checkpoint (writes made since are "
            "redone); `dualwrite backfill` resumes where this run stopped"
        )
        raise typer.Exit(130)


def retention_gate(
    app: AppContext, route: str | None, max_wcu: float | None, *, accept: bool
) -> list[str]:
    """Refuse (exit 4) a backfill estimated to outlast 80% of the stream's retention, unless
    the risk is accepted: then journal it and return the routes it was accepted for."""
    estimates = estimate_routes(
        app.clients, app.migration, None if route is None else [route], max_wcu=max_wcu
    )
    risky = {name: e for name, e in estimates.items() if over_retention(e)}
    if not risky:
        return []
    if not accept:
        name, worst = max(risky.items(), key=lambda kv: kv[1].backfill_seconds)
        raise SafetyGateError(f"backfill refused: {refusal(name, worst)}")
    check_control_table(app.clients, app.migration)  # where the acceptance is journaled
    store = app.store
    for name, e in risky.items():
        now = store.now()
        store.put(
            RISK_PK,
            f"{iso(now)}#{name}",
            {
                "action": "accept-retention-risk",
                "route": name,
                "at": now,
                "max_wcu": max_wcu,
                "estimate": e.to_json(),
            },
        )
        app.err.print(
            f"[bold red]WARNING:[/] route {name}: the backfill may take about {e.hours:,.1f} h, "
            "over 80% of the stream's 24 h retention; --accept-retention-risk journaled"
        )
    return sorted(risky)


def backfill_with_progress(
    app: AppContext, *, quiet: bool = False, **options: Any
) -> BackfillResult:
    """run_backfill with a progress bar per route on stderr (also used by the demo)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _Count(),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=app.err,
        disable=not app.interactive,  # stderr: --json keeps stdout to itself
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {}
        lock = threading.Lock()
        lines = ProgressLines("backfill", app.say, enabled=not app.interactive and not quiet)

        def on_progress(name: str, items: int, approx_total: int) -> None:
            lines.add(name, items, approx_total)
            with lock:
                if name not in tasks:
                    tasks[name] = progress.add_task(
                        name, total=approx_total or None, completed=items, first=items
                    )
                    return
            progress.advance(tasks[name], items)

        if not quiet and app.interactive:
            app.err.print("[dim]item totals are approximate (DescribeTable ItemCount)[/]")
        return run_backfill(
            app.migration,
            app.clients,
            app.store,
            on_progress=on_progress,
            warn=lambda message: app.err.print(f"[bold red]WARNING:[/] {message}"),
            **options,
        )


def print_result(app: AppContext, result: BackfillResult, *, interrupted: bool = False) -> None:
    table = Table(title="backfill", title_justify="left")
    for col in ("route", "mode", "read", "written", "quarantined", "segments", "phase"):
        table.add_column(col, justify="right" if col in ("read", "written") else "left")
    for r in result.routes:
        segs = f"{r.segments} ({r.segments_resumed} resumed)"
        phase = r.phase.value + (" [bold red](needs repair)[/]" if r.needs_repair else "")
        table.add_row(
            r.route,
            r.mode,
            f"{r.items_read:,}",
            f"{r.items_written:,}",
            str(r.quarantined),
            segs,
            phase,
        )
    app.out.print(table)
    for r in result.routes:
        if r.skipped_existing:
            app.out.print(
                f"{r.route}: {r.skipped_existing} item(s) already in the target were "
                "left to the replicator (put-if-absent)"
            )
        if r.quarantined:
            app.out.print(
                f"{r.route}: {r.quarantined} item(s) quarantined with their reasons "
                "(see `dualwrite status`)"
            )
        backfilled = r.phase is Phase.BACKFILLED
        if backfilled and r.event_source_mappings:
            for m in r.event_source_mappings:
                app.out.print(
                    f"{r.route}: event source mapping {m.uuid} ({m.function}): "
                    f"{m.state}" + (" (enabled now)" if m.changed else "")
                )
        elif backfilled and r.event_source_error is None:
            app.out.print(f"{r.route}: no Lambda event source mappings on its stream")
    if interrupted:
        app.out.print(f"stopped after {result.duration_s:.1f}s, before the end")
    else:
        app.out.print(f"done in {result.duration_s:.1f}s")
