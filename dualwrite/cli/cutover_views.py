"""What `cutover` prints for people (cmd_cutover decides nothing): the planned and made
changes, the gate, the access warnings, and the safeguards of DESIGN.md section 10 (SSM
parameters, references, alarm clones, smoke tests, the watch, a rollback after the switch)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from dualwrite.cli.context import AppContext
from dualwrite.control import iso
from dualwrite.cutover.functions import VariableChange
from dualwrite.cutover.gate import Decision
from dualwrite.cutover.iam import AccessWarning
from dualwrite.cutover.references import references_table
from dualwrite.cutover.results import DRAIN_ADVICE, CutoverResult, RollbackResult, Status
from dualwrite.cutover.reverse_journal import ROLLBACK_LOSES_WRITES, DirectionSwitch
from dualwrite.cutover.safeguard_views import parameters_table, smoke_table, watch_summary


def wide(app: AppContext) -> Console:
    # piped output keeps long ARNs on one line, so tables can be copied from logs
    return app.out if app.out.is_terminal else Console(width=220, highlight=False)


def changes_table(changes: tuple[VariableChange, ...]) -> Table:
    table = Table()
    table.add_column("function", no_wrap=True)
    table.add_column("variable", no_wrap=True)
    table.add_column("old value", overflow="fold")
    table.add_column("new value", overflow="fold")
    for c in changes:
        table.add_row(c.function, c.variable, c.old, c.new)
    return table


def say_warnings(app: AppContext, warnings: tuple[AccessWarning, ...]) -> None:
    unchecked: dict[str, list[str]] = {}
    for w in warnings:
        if w.checked:
            app.err.print(f"warning: {w.message()}")
        else:
            unchecked.setdefault(w.detail, [])
            if w.function not in unchecked[w.detail]:
                unchecked[w.detail].append(w.function)
    for detail, functions in unchecked.items():
        app.err.print(
            f"warning: could not check whether the execution roles of {len(functions)} "
            f"function(s) can access the new tables: {detail}"
        )


def gate_summary(app: AppContext, decision: Decision) -> None:
    for c in decision.checks:
        if c.ok and c.detail == ROLLBACK_LOSES_WRITES:
            app.err.print(f"warning: {c.detail}")
    if decision.ok:
        app.out.print(f"gate: passed ({len(decision.checks)} checks)")
    else:
        app.out.print("gate: would refuse:")
        for reason in decision.reasons:
            app.out.print(f"  - {reason}", markup=False)


def show_dry_run(app: AppContext, result: CutoverResult, decision: Decision) -> None:
    gate_summary(app, decision)
    if result.plans:
        app.out.print("cutover would change:")
        wide(app).print(changes_table(result.changes))
    else:
        app.out.print(f"no function names a source table ({result.functions_checked} checked)")
    planned = result.precheck.parameters if result.precheck else ()
    if planned:
        wide(app).print(parameters_table(planned, "SSM parameters cutover would re-point"))
    wide(app).print(references_table(result.references))
    for skipped in result.references_skipped:
        app.err.print(f"note: could not look for references in {skipped.kind}: {skipped.reason}")
    say_warnings(app, result.warnings)


def say_safeguards(app: AppContext, result: CutoverResult) -> None:
    """The SSM parameters, alarm clones, smoke tests and watch of a cutover that ran."""
    s = result.safeguards
    if s is None:
        return
    if s.parameters:
        wide(app).print(parameters_table(s.parameters, "SSM parameters re-pointed"))
    for clone in s.clones:
        # names are the user's ("api-latency [new-t]" printed as "api-latency"): no markup
        app.out.print(f"alarm {clone.source} cloned as {clone.name}", markup=False)
    for note in s.notes:
        app.err.print(f"note: {note}", markup=False)
    if s.smoke:
        wide(app).print(smoke_table(s.smoke))
    if s.watch is not None:
        app.out.print(watch_summary(s.watch))


def say_rolled_back(app: AppContext, result: CutoverResult, json_out: bool) -> None:
    """A check after the switch failed and everything was put back (or not all of it)."""
    if not json_out:
        say_safeguards(app, result)
    assert result.rollback is not None
    back = result.rollback
    what = "rolled back" if result.status is Status.ROLLED_BACK else "rolled back in part"
    app.err.print(f"cutover {what}: {result.rollback_reason}", soft_wrap=True, markup=False)
    app.err.print(
        f"put back: {len(back.restored)} function(s), {len(back.safeguards.parameters)} SSM "
        f"parameter(s), {len(back.safeguards.clones)} alarm clone(s) deleted"
    )
    for failed in back.safeguards.failed:
        app.err.print(f"error: COULD NOT put back {failed} (run dualwrite rollback again)")


def say_before_switch(
    app: AppContext, result: CutoverResult, decision: Decision, json_out: bool
) -> None:
    """What the CLI said before the switch: forcing past the gate, nothing to re-point,
    the access warnings."""
    if result.forced_past_gate:
        app.err.print(f"warning: forcing past the gate ({result.reason}):", markup=False)
        for r in decision.reasons:
            app.err.print(f"  - {r}", markup=False)
    if not result.plans:
        app.err.print(
            f"warning: no function names a source table ({result.functions_checked} checked); "
            "the cutover is recorded and starts the observation window"
        )
    if not json_out:
        say_warnings(app, result.warnings)


def say_reverse(app: AppContext, switch: DirectionSwitch | None) -> None:
    """The switch of direction a cutover made (DESIGN.md section 8)."""
    if switch is None:
        return
    if not switch.reverse:
        app.err.print(f"warning: {switch.note}")
        return
    for r in switch.routes:
        app.out.print(
            f"route {r.route}: {r.direction} from {iso(r.switched_at)} (the old direction "
            f"drains until {iso(r.switched_at + r.overlap_s)}, O = {switch.overlap_s:g} s)"
        )
    for m in switch.mappings:
        app.out.print(f"event source mapping {m.uuid} enabled from {iso(m.starts_at)}")


def say_rollback_direction(app: AppContext, result: RollbackResult) -> None:
    """What a rollback leaves to the replicator, and what it could not carry back."""
    for pending in result.pending:
        app.err.print(f"error: direction not switched yet, {pending}; run dualwrite rollback again")
    if result.drain_pending:
        app.out.print(f"note: {DRAIN_ADVICE}")
    if result.unrepresentable:
        app.err.print(
            f"warning: {len(result.unrepresentable)} change(s) to the new tables cannot be "
            "held by the old schema (quarantined as unrepresentable, not rolled back):"
        )
        for q in result.unrepresentable:
            app.err.print(f"  - {q.route} {q.id}: {q.reason}")
