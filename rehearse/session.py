"""One rehearsal: a private ministack started, the steps run against it, and everything
that was started stopped again, whatever happened."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from rehearse.context import Options, Rehearsal
from rehearse.steps import Step, StepResult, run_steps
from rehearse.tools import MINISTACK_EXTRA, MINISTACK_VENV_SUFFIX, ensure_sam
from rehearse.traffic import stop_traffic
from tests.ministack_harness import VENV, Ministack


def rehearse(
    options: Options, workdir: Path, console: Console, steps: Sequence[Step[Rehearsal]]
) -> tuple[Rehearsal, list[StepResult]]:
    """Start ministack, run the steps against it, stop everything started."""
    sam = ensure_sam()
    server = Ministack(
        log_path=workdir / "ministack.log",
        venv=VENV.with_name(VENV.name + MINISTACK_VENV_SUFFIX),
        extra_requirements=MINISTACK_EXTRA,
    )
    try:
        server.start()
    except BaseException:  # interrupted while it comes up: its group goes down too
        server.stop()
        raise
    rehearsal = Rehearsal(options, server.endpoint, workdir, sam)
    rehearsal.say = lambda line: console.print(f"    {line}", soft_wrap=True)
    try:
        console.print(f"ministack at {server.endpoint}; commands log: {rehearsal.log}")

        def report(r: StepResult) -> None:
            mark = "ok" if r.ok else "FAILED"
            console.print(f"  {r.section:<13} {r.action}: {mark} {r.detail} ({r.seconds:.1f}s)")

        results = run_steps(steps, rehearsal, report)
    finally:
        stop_traffic(rehearsal)
        server.stop()
    return rehearsal, results
