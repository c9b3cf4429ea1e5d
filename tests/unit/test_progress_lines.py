"""Progress off a terminal: one line every interval, counts per route, nothing when off."""

from __future__ import annotations

from dualwrite.cli.progress_lines import ProgressLines


def test_one_line_per_interval_with_each_routes_count() -> None:
    now = [100.0]
    said: list[str] = []
    lines = ProgressLines("backfill", said.append, interval=15.0, clock=lambda: now[0])
    lines.add("servers", 500, 2000)
    lines.add("memberships", 100, 600)
    assert said == []  # the first interval has not passed
    now[0] = 116.0
    lines.add("servers", 500)
    assert said == ["backfill: servers 1,000 of ~2,000 items, memberships 100 of ~600 items (16 s)"]
    now[0] = 120.0
    lines.add("servers", 1)
    assert len(said) == 1  # not again within the interval
    now[0] = 131.5
    lines.add("servers", 1)
    assert said[-1].startswith("backfill: servers 1,002 of ~2,000 items") and len(said) == 2


def test_nothing_is_said_on_a_terminal() -> None:
    said: list[str] = []
    now = [0.0]
    lines = ProgressLines("x", said.append, enabled=False, interval=1.0, clock=lambda: now[0])
    for t in range(10):
        now[0] = float(t * 5)
        lines.add("r", 1)
    assert said == []
