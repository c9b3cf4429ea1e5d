"""Human output for the cutover's safeguards: the smoke test table, and the watch's progress
bar with the time left (the references table is references.references_table)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from dualwrite.cutover.smoke import SmokeResult
from dualwrite.cutover.watch import WatchProgress


def smoke_table(results: Iterable[SmokeResult]) -> Table:
    table = Table(title="Smoke tests", title_justify="left")
    table.add_column("Function")
    table.add_column("Result")
    table.add_column("ms", justify="right")
    table.add_column("Reason", overflow="fold")
    for r in results:
        verdict = "[green]passed[/green]" if r.passed else "[red]FAILED[/red]"
        table.add_row(r.function, verdict, str(r.duration_ms), r.reason)
    return table


def time_left(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


@contextmanager
def watch_bar(console: Console) -> Iterator[Callable[[WatchProgress], None]]:
    """A progress bar for run_watch's on_progress: how much of the watch has passed, the time
    left and the checks made. Draws nothing on a console that is not a terminal."""
    progress = Progress(
        TextColumn("watching"),
        BarColumn(),
        TextColumn("{task.fields[left]} left, {task.fields[checks]} checks"),
        console=console,
        transient=False,
    )
    task = progress.add_task("watch", total=None, left="?", checks=0)

    def update(p: WatchProgress) -> None:
        progress.update(
            task, total=p.total, completed=p.elapsed, left=time_left(p.remaining), checks=p.checks
        )

    with progress:
        yield update
