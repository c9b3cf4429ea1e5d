"""`python -m rehearse` (`make rehearse`): the AWS deployment rehearsed on a private ministack.

Exit 0 only when every step ran and the reconcile found parity; 1 when a step failed (its
logs are kept and named); 2 when a tool could not be installed. Every process it starts
(ministack and its Lambda workers, sam) is ended on the way out, Ctrl-C included."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from rehearse import flow, gaps
from rehearse.context import Options
from rehearse.session import rehearse
from rehearse.steps import summary_table
from rehearse.tools import BENCH, ToolUnavailable, terminated_as_interrupt
from tests.ministack_harness import MinistackUnavailable


def options_of(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    defaults = Options()
    p = argparse.ArgumentParser(prog="python -m rehearse", description=__doc__)
    p.add_argument("--servers", type=int, default=defaults.servers)
    p.add_argument("--memberships", type=int, default=defaults.memberships)
    p.add_argument(
        "--route", action="append", dest="routes", help="backfill only this route (repeatable)"
    )
    p.add_argument("--traffic-rate", type=float, default=defaults.traffic_rate)
    p.add_argument("--after-backfill-s", type=float, default=defaults.after_backfill_s)
    p.add_argument("--workdir", type=Path, help="keep the build and logs here")
    a = p.parse_args(argv)
    options = Options(
        servers=a.servers,
        memberships=a.memberships,
        routes=tuple(a.routes or defaults.routes),
        traffic_rate=a.traffic_rate,
        after_backfill_s=a.after_backfill_s,
    )
    return options, a.workdir


def main(argv: Sequence[str] | None = None) -> int:
    options, given = options_of(argv)
    # a log or a pipe gets the whole table, not 80 columns of it
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 180)
    workdir = given or Path(tempfile.mkdtemp(prefix="dualwrite-rehearse-"))
    started = time.monotonic()
    steps = flow.STEPS
    try:
        with terminated_as_interrupt():
            rehearsal, results = rehearse(options, workdir, console, steps)
    except (ToolUnavailable, MinistackUnavailable) as exc:
        console.print(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        console.print(f"interrupted: every process started was stopped; logs in {workdir}")
        return 130
    ok = len(results) == len(steps) and all(r.ok for r in results)
    console.print(
        summary_table(
            steps,
            results,
            f"Rehearsal of the AWS deployment on ministack ({time.monotonic() - started:.0f}s)",
        ),
    )
    for a in [*rehearsal.adaptations, *gaps.NOT_EXERCISED]:
        console.print(a.line(), soft_wrap=True)
    if ok:
        routes = rehearsal.parity["routes"]
        console.print(
            "parity: "
            + ", ".join(
                f"{x['route']} {x['parity_percent']}% "
                f"({x['expected_target_items']} expected, {x['missing']} missing, "
                f"{x['extra']} extra, {x['mismatched']} mismatched)"
                for x in routes
            )
        )
        if given is None:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    console.print(f"rehearsal FAILED: logs kept in {workdir}")
    return 1


if __name__ == "__main__":
    BENCH.mkdir(exist_ok=True)
    sys.exit(main())
