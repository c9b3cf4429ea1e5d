"""The rehearsal's record: one result per step that ran, what was not rehearsed, and the
summary table. Pure (rich renders; nothing here calls AWS)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.table import Table

from rehearse.adapt import Adaptation

C = TypeVar("C")


class StepFailed(Exception):
    """A step found the deployed stack not doing what the README says: the rehearsal fails."""


@dataclass(frozen=True)
class Step(Generic[C]):
    """One entry of the README's order of operations. run() returns what it found (one
    line) or raises StepFailed."""

    section: str  # the README's numbered step, e.g. "3. backfill"
    action: str  # the command or call, as the README writes it
    against: str  # what it ran against: "deployed stack", "tables", "build"
    run: Callable[[C], str]


@dataclass(frozen=True)
class StepResult:
    section: str
    action: str
    against: str
    ok: bool
    detail: str
    seconds: float


def run_steps(
    steps: Sequence[Step[C]], context: C, report: Callable[[StepResult], None]
) -> list[StepResult]:
    """Each step in order until one fails; report() sees each result as it comes."""
    results: list[StepResult] = []
    for step in steps:
        started = time.monotonic()
        try:
            detail, ok = step.run(context), True
        except StepFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # an AWS error, say: the rehearsal still reports and cleans up
            detail, ok = f"{type(exc).__name__}: {exc}", False
        result = StepResult(
            step.section, step.action, step.against, ok, detail, time.monotonic() - started
        )
        results.append(result)
        report(result)
        if not ok:
            break
    return results


def summary_table(steps: Sequence[Step[C]], results: Sequence[StepResult], title: str) -> Table:
    """Every step: its result, or "not run" after a failure."""
    table = Table(title=title, title_justify="left")
    for column in ("step", "command", "against", "result", "s"):
        table.add_column(column, justify="right" if column == "s" else "left")
    for i, step in enumerate(steps):
        if i < len(results):
            r = results[i]
            mark = "[green]ok[/]" if r.ok else "[red]FAILED[/]"
            table.add_row(r.section, r.action, r.against, f"{mark} {r.detail}", f"{r.seconds:.1f}")
        else:
            table.add_row(step.section, step.action, step.against, "[yellow]not run[/]", "")
    return table


def not_rehearsed_lines(adaptations: Sequence[Adaptation]) -> list[str]:
    return [a.line() for a in adaptations]
