"""The backfill progress bar's rate: the run's average, not rich's windowed speed (progress
arrives a scan page at a time, and two samples a moment apart overstated it ~80 times)."""

from __future__ import annotations

from rich.progress import Progress

from dualwrite.cli.cmd_backfill import _Rate


def test_the_rate_is_the_runs_average_even_when_progress_comes_in_bursts() -> None:
    now = [0.0]
    progress = Progress(disable=True, get_time=lambda: now[0])
    task_id = progress.add_task("servers", total=2000, first=0)
    task = progress.tasks[0]
    assert str(_Rate().render(task)) == "- items/s"  # nothing yet
    now[0] = 10.0
    progress.advance(task_id, 1000)  # one page after 10 s
    now[0] = 10.01
    progress.advance(task_id, 990)  # the next a moment later: rich's window says ~99,000/s
    assert str(_Rate().render(task)) == "199 items/s"
    progress.advance(task_id, 10)  # finished: the rate stays the average over the run
    now[0] = 60.0
    assert task.finished and str(_Rate().render(task)) == "200 items/s"
