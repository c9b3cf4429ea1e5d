"""The smoke table and the watch's progress bar render what they are given."""

from __future__ import annotations

import io

from rich.console import Console

from dualwrite.cutover.safeguard_views import smoke_table, time_left, watch_bar
from dualwrite.cutover.smoke import SmokeResult
from dualwrite.cutover.watch import WatchProgress


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=True, color_system=None), out


def test_smoke_table() -> None:
    c, out = console()
    c.print(
        smoke_table(
            [
                SmokeResult("api", True, "", 200, None, 12),
                SmokeResult("worker", False, "function error (Unhandled)", 200, "Unhandled", 3),
            ]
        )
    )
    text = out.getvalue()
    assert "api" in text and "passed" in text
    assert "worker" in text and "FAILED" in text and "function error (Unhandled)" in text


def test_time_left() -> None:
    assert [time_left(s) for s in (0, 59.6, 61, 300, -3)] == [
        "0:00",
        "1:00",
        "1:01",
        "5:00",
        "0:00",
    ]


def test_watch_bar_shows_the_time_left() -> None:
    c, out = console()
    with watch_bar(c) as update:
        update(WatchProgress(0, 300, 1))
        update(WatchProgress(270, 300, 10))
    text = out.getvalue()
    assert "0:30 left, 10 checks" in text


def test_watch_bar_draws_nothing_off_a_terminal() -> None:
    """Not even the bar's last state at the end (README: bars only on a terminal)."""
    out = io.StringIO()
    c = Console(file=out, force_terminal=False, width=120)
    with watch_bar(c) as update:
        update(WatchProgress(270, 300, 10))
    assert out.getvalue() == ""
