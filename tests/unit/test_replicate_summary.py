"""What `dualwrite replicate` prints at the end of a run: after a cutover, a second table says
which way each route goes and what went back (applied in reverse, foreign writes, waiting)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dualwrite.cli.cmd_replicate import _print_summary
from dualwrite.cli.context import AppContext
from stream_replicator.run_summary import RouteSummary, RunSummary


def printed(summary: RunSummary) -> str:
    app = AppContext(Path("dualwrite.yaml"), None, None, out=Console(record=True, width=120))
    _print_summary(app, summary)
    return app.out.export_text()


def route(name: str, **kw: object) -> RouteSummary:
    return RouteSummary(name, False, "backfilled", 3, 0, 0, 0, 1, **kw)  # type: ignore[arg-type]


def test_forward_runs_print_no_directions() -> None:
    text = printed(RunSummary(records=3, applied=3, routes=[route("servers")]))
    assert "directions" not in text and "in reverse" not in text
    assert "3 records, 3 applied, 0 quarantined" in text


def test_a_run_after_a_cutover_says_what_went_back() -> None:
    routes = [
        route("servers", direction="reverse", reverse_replicated=2, foreign_writes=1),
        route("memberships", direction="reverse", drain_pending=True, waiting=4),
    ]
    summary = RunSummary(
        records=6, applied=2, reverse_replicated=2, foreign_writes=1, waiting=4, routes=routes
    )
    text = printed(summary)
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()]
    rows = {row[0]: row[1:] for row in cells if len(row) == 5}  # the directions table's
    assert rows["servers"] == ["reverse", "2", "1", "0"]
    assert rows["memberships"] == ["reverse (old one draining)", "0", "0", "4"]
    assert (
        "6 records, 2 applied, 2 of them in reverse, 1 foreign write(s), 4 wait(s) for a drain"
        in text
    )
