"""Human output for the cutover's safeguards: the smoke test table, the SSM parameters table,
the watch's progress bar with the time left and its summary (the references table is
references.references_table)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from dualwrite.cutover.smoke import SmokeResult
from dualwrite.cutover.ssm import ParameterChange
from dualwrite.cutover.switch_guards import Observer
from dualwrite.cutover.watch import WatchProgress, WatchResult


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
        # off a terminal rich would still print the bar's last state once, at the end
        disable=not console.is_terminal,
    )
    task = progress.add_task("watch", total=None, left="?", checks=0)

    def update(p: WatchProgress) -> None:
        progress.update(
            task, total=p.total, completed=p.elapsed, left=time_left(p.remaining), checks=p.checks
        )

    with progress:
        yield update


def parameters_table(changes: Iterable[ParameterChange], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("parameter", no_wrap=True)
    table.add_column("old value", overflow="fold")
    table.add_column("new value", overflow="fold")
    for c in changes:
        table.add_row(c.name, c.old, c.new)
    return table


def watch_summary(watch: WatchResult) -> str:
    if watch.ok:
        return (
            f"watch: no new errors or throttles and no watched alarm in ALARM for "
            f"{watch.watched_seconds:g} s ({watch.checks} check(s))"
        )
    return f"watch: breach after {watch.watched_seconds:g} s: {watch.reason}"


class LiveWatch:
    """The Observer the CLI hands the cutover: a line per smoke test as it is done; on the
    watch's first progress a line saying what is watched (also on a console that is not a
    terminal, where no bar is drawn), then the progress bar; `close` ends the bar."""

    def __init__(self, console: Console, watched: str) -> None:
        self.console = console
        self.watched = watched
        self.stack = ExitStack()
        self.update: Callable[[WatchProgress], None] | None = None

    def progress(self, p: WatchProgress) -> None:
        if self.update is None:
            self.console.print(f"watching {self.watched} for {p.total:g} s after the switch")
            self.update = self.stack.enter_context(watch_bar(self.console))
        self.update(p)

    def smoke(self, r: SmokeResult) -> None:
        verdict = "passed" if r.passed else f"FAILED: {r.reason}"
        self.console.print(f"smoke test {r.function}: {verdict} ({r.duration_ms} ms)")

    def observer(self) -> Observer:
        return Observer(smoke=self.smoke, progress=self.progress)

    def close(self) -> None:
        self.stack.close()
