"""`replicate`: the local stream runner (Lambda's event source mapping, outside AWS).

Ctrl-C (or SIGTERM) stops cleanly: the batch in hand is finished and checkpointed; a second
Ctrl-C interrupts at once. A plain `replicate` ends that way (exit 0); one stopped before the
`--until-caught-up` it was asked for exits 130, so that `replicate --until-caught-up &&
dualwrite cutover` does not go on as if it had caught up; for the same reason one whose
`--duration` ran out first exits 1.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table

from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.cli.signals import stop_on_signals

if TYPE_CHECKING:
    from stream_replicator.run_summary import RunSummary


def register(app: typer.Typer) -> None:
    app.command("replicate")(replicate)


class _ConsoleHandler(logging.Handler):
    """The replicator's warnings (quarantines, retries) on stderr, through rich, so they do
    not garble the progress line (and never touch stdout, which --json owns)."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(f"[yellow]warning:[/] {record.getMessage()}", highlight=False)
        except Exception:
            self.handleError(record)


def _switched(summary: RunSummary) -> bool:
    """Whether a route replicates in reverse, or did (then the reverse figures are shown)."""
    return bool(summary.drained_routes) or any(
        r.direction != "forward" or r.drain_pending or r.reverse_replicated or r.foreign_writes
        for r in summary.routes
    )


def _reverse_text(summary: RunSummary) -> str:
    # a record held for a drain is read again every poll and counts each time (the Lambda's
    # failure reports): "waits", not records, or a 246-record run showed "667 waiting"
    return (
        f"{summary.reverse_replicated} of them in reverse, "
        f"{summary.foreign_writes} foreign write(s), {summary.waiting} wait(s) for a drain, "
    )


def _progress_text(summary: RunSummary) -> str:
    lag = summary.lag_ms
    return (
        f"replicating: {summary.records} records, {summary.applied} applied, "
        + (_reverse_text(summary) if _switched(summary) else "")
        + f"{summary.quarantined} quarantined, {summary.failed} failed, "
        f"lag {'-' if lag is None else f'{lag} ms'}, "
        f"{summary.shards_done}/{summary.shards} shards closed"
    )


def _print_summary(app: AppContext, summary: RunSummary) -> None:
    table = Table(title="replication", title_justify="left")
    for col in ("route", "phase", "records", "applied", "quarantined", "shards"):
        table.add_column(col)
    for r in summary.routes:
        table.add_row(
            r.route,
            r.phase,
            str(r.records),
            str(r.applied),
            str(r.quarantined),
            str(r.shards),
        )
    app.out.print(table)
    switched = _switched(summary)
    if switched:  # after a cutover: which way each route goes, and what went back
        directions = Table(title="directions", title_justify="left")
        for col in (
            "route",
            "direction",
            "applied in reverse",
            "foreign writes",
            "waits for a drain",
        ):
            directions.add_column(col)
        for r in summary.routes:
            directions.add_row(
                r.route,
                r.direction + (" (old one draining)" if r.drain_pending else ""),
                str(r.reverse_replicated),
                str(r.foreign_writes),
                str(r.waiting),
            )
        app.out.print(directions)
    lag = summary.lag_ms
    app.out.print(
        f"{summary.records} records, {summary.applied} applied, "
        + (_reverse_text(summary) if switched else "")
        + f"{summary.quarantined} quarantined, {summary.failed} failure report(s), "
        f"lag {'-' if lag is None else f'{lag} ms'}" + (" - caught up" if summary.caught_up else "")
    )
    if summary.held_routes:
        app.out.print(
            "held (not backfilled yet, changes kept in the stream): "
            + ", ".join(summary.held_routes)
        )


def replicate(
    ctx: typer.Context,
    until_caught_up: bool = typer.Option(
        False,
        "--until-caught-up",
        help="Exit once every shard of every backfilled route is drained.",
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=0, help="Exit after this many seconds."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object at the end."),
    batch_size: int = typer.Option(
        100, "--batch-size", min=1, max=1000, help="Records per batch (like Lambda's BatchSize)."
    ),
    poll_interval: float = typer.Option(
        1.0, "--poll-interval", min=0.0, help="Seconds between polls of an idle stream."
    ),
) -> None:
    """Apply the sources' stream changes to the targets (routes wait for their backfill)."""
    from dualwrite.aws.cognito import user_pool
    from stream_replicator.runner import StreamRunner  # lazily: keeps --help fast
    from stream_replicator.runner_settings import RunnerSettings

    app = get(ctx)
    migration = app.migration
    pool = user_pool(app.clients, migration.cognito_user_pool_id)
    if pool is not None:  # a wrong id is bad configuration (exit 2), said now
        pool.check()
    stop = threading.Event()
    handler = _ConsoleHandler(app.err)
    logger = logging.getLogger("dualwrite-replicator")
    logger.addHandler(handler)
    logger.propagate = False
    status: Status | None = None
    if not json_out and app.interactive:
        status = app.err.status("replicating: starting")

    def on_progress(summary: RunSummary) -> None:
        if status is not None:
            status.update(_progress_text(summary))

    runner = StreamRunner(
        migration,
        app.clients,
        app.store,
        RunnerSettings(batch_size=batch_size, poll_interval=poll_interval),
        notify=app.say,
    )
    try:
        stopping = "stopping: finishing the current batch and saving checkpoints"
        with stop_on_signals(stop, lambda: app.say(f"{stopping} (Ctrl-C again aborts)")):
            if status is not None:
                status.start()
            try:
                summary = runner.run(
                    until_caught_up=until_caught_up,
                    duration=duration,
                    stop=stop,
                    on_progress=on_progress,
                )
            finally:
                if status is not None:
                    status.stop()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    if json_out:
        emit_json(summary.to_json())
    else:
        _print_summary(app, summary)
    if stop.is_set() and until_caught_up and not summary.caught_up:
        app.say("interrupted before catching up (checkpoints saved: run it again to go on)")
        raise typer.Exit(130)
    if until_caught_up and not summary.caught_up and not summary.stuck_shards:
        # --duration ran out first: `replicate --until-caught-up --duration S && cutover`
        # must not go on as if it had caught up
        why = f"--duration {duration:g}s ran out" if duration is not None else "it stopped"
        app.say(f"{why} before catching up (checkpoints saved: run it again to go on)")
        raise typer.Exit(1)
    if summary.stuck_shards:
        app.say(
            "some shards could not make progress: "
            + ", ".join(summary.stuck_shards)
            + " (their checkpoints stay before the failing records)"
        )
        raise typer.Exit(1)
