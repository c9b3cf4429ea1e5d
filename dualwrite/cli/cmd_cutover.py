"""`cutover`, `rollback`, `decommission`: the gated last steps of a migration.

The decisions are made in the core (dualwrite.cutover.switch, .rollback, .decommission),
which returns typed results; this module only parses options and displays them.

Exit codes (DESIGN.md section 4): 0 done (or nothing left to do), 4 a safety gate refused and
nothing changed (or a check after the switch failed and every change was put back), 2 bad
usage (--force without --reason), 1 anything else (e.g. an update failed and the functions
already changed were put back).

The hidden `--now ISO8601` option moves the clock (tests: the observation window).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from dualwrite.aws.clients import Clients
from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.control import iso
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.decommission import run_decommission
from dualwrite.cutover.functions import VariableChange
from dualwrite.cutover.gate import Decision
from dualwrite.cutover.iam import AccessWarning, RoleChecker
from dualwrite.cutover.results import CutoverResult, DecommissionResult, RollbackResult, Status
from dualwrite.cutover.rollback import rollback as decide_rollback
from dualwrite.cutover.switch import CutoverRequest
from dualwrite.cutover.switch import cutover as decide_cutover
from dualwrite.errors import ConfigError, SafetyGateError

NOW_OPTION = typer.Option(None, "--now", hidden=True, help="Use this ISO 8601 time as now (tests).")
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object.")


def register(app: typer.Typer) -> None:
    app.command("cutover")(cutover)
    app.command("rollback")(rollback)
    app.command("decommission")(decommission)


# --- shared -------------------------------------------------------------------------------


def clock_from(now: str | None) -> Callable[[], float]:
    """Real time, or a clock that starts at --now and runs at real speed."""
    if not now:
        return time.time
    try:
        when = datetime.fromisoformat(now)
    except ValueError:
        raise ConfigError(f"--now: not an ISO 8601 time: {now!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    start, origin = when.timestamp(), time.monotonic()
    return lambda: start + (time.monotonic() - origin)


def _context(app: AppContext, now: str | None) -> CutoverContext:
    return CutoverContext.open(app.migration, app.clients, clock_from(now))


def _wide(app: AppContext) -> Console:
    # piped output keeps long ARNs on one line, so tables can be copied from logs
    return app.out if app.out.is_terminal else Console(width=220, highlight=False)


def _gate_refused(app: AppContext, what: str, decision: Decision | None) -> None:
    app.err.print(f"{what} refused by the safety gate; nothing was changed:")
    for reason in decision.reasons if decision else []:
        app.err.print(f"  - {reason}")
    raise typer.Exit(Status.REFUSED.exit_code)


@contextmanager
def _refusals_as_json(json_out: bool) -> Iterator[None]:
    """With --json, a refusal is still one JSON object on stdout (and one line on stderr)."""
    try:
        yield
    except SafetyGateError as exc:
        if json_out:
            emit_json({"status": str(Status.REFUSED), "refused": True, "reason": str(exc)})
        raise


def _changes_table(changes: tuple[VariableChange, ...]) -> Table:
    table = Table()
    table.add_column("function", no_wrap=True)
    table.add_column("variable", no_wrap=True)
    table.add_column("old value", overflow="fold")
    table.add_column("new value", overflow="fold")
    for c in changes:
        table.add_row(c.function, c.variable, c.old, c.new)
    return table


def _say_warnings(app: AppContext, warnings: tuple[AccessWarning, ...]) -> None:
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


def _gate_summary(app: AppContext, decision: Decision) -> None:
    if decision.ok:
        app.out.print(f"gate: passed ({len(decision.checks)} checks)")
    else:
        app.out.print("gate: would refuse:")
        for reason in decision.reasons:
            app.out.print(f"  - {reason}")


# --- cutover ------------------------------------------------------------------------------


def cutover(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the planned changes and the gate; change nothing."
    ),
    force: bool = typer.Option(
        False, "--force", help="Cut over although the gate refuses (needs --reason)."
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Why the gate is forced (recorded in the journal)."
    ),
    json_out: bool = JSON_OPTION,
    now: str | None = NOW_OPTION,
) -> None:
    """Re-point Lambda functions from the source tables to the targets (gated)."""
    with _refusals_as_json(json_out):
        cutover_flow(get(ctx), dry_run, force, reason, json_out, now)


def cutover_flow(
    app: AppContext,
    dry_run: bool,
    force: bool,
    reason: str | None,
    json_out: bool,
    now: str | None,
) -> None:
    """The cutover command without typer (the demo runs its dry run through it)."""
    request = CutoverRequest(dry_run=dry_run, force=force, reason=reason)
    result = decide_cutover(_context(app, now), request, roles=_roles(app))
    show_cutover(app, result, json_out)


def _roles(app: AppContext) -> RoleChecker:
    # one attempt: moto answers IAM simulation with an HTTP 500, not worth retrying
    return RoleChecker(Clients(replace(app.settings, max_attempts=1)).client("iam"))


def show_cutover(app: AppContext, result: CutoverResult, json_out: bool) -> None:
    if result.refusal is not None:  # one JSON object and one line, from _refusals_as_json
        raise SafetyGateError(result.refusal)
    if json_out:
        emit_json(result.to_json())
    if result.already_cut_over:
        if not json_out:
            app.out.print(
                "already cut over: no function names a source table "
                f"({result.functions_checked} checked)"
            )
        return
    assert result.gate is not None  # every other result went through the gate
    if result.dry_run:
        if not json_out:
            _show_dry_run(app, result, result.gate)
        return
    if result.status is Status.REFUSED:
        _gate_refused(app, "cutover", result.gate)
    _say_before_switch(app, result, result.gate, json_out)
    if result.failure is not None:
        app.err.print(f"error: cutover failed: {result.failure.message}")
        raise typer.Exit(result.status.exit_code)
    if result.status is Status.ROLLED_BACK:
        app.err.print("cutover rolled back: a check after the switch failed:")
        for c in result.post_switch:
            if not c.ok:
                app.err.print(f"  - {c.subject}: {c.detail}")
        raise typer.Exit(result.status.exit_code)
    if json_out:
        return
    entry = result.entry
    assert entry is not None  # done and not dry: the switch ran
    if result.changes:
        app.out.print("cutover changed:")
        _wide(app).print(_changes_table(result.changes))
    app.out.print(
        f"cut over {len(result.functions)} function(s) at {iso(entry.at)}; observe for "
        f"{result.observation_days:g} day(s), then `dualwrite decommission` "
        "(`dualwrite rollback` undoes it)"
    )


def _show_dry_run(app: AppContext, result: CutoverResult, decision: Decision) -> None:
    _gate_summary(app, decision)
    if result.plans:
        app.out.print("cutover would change:")
        _wide(app).print(_changes_table(result.changes))
    else:
        app.out.print(f"no function names a source table ({result.functions_checked} checked)")
    _say_warnings(app, result.warnings)


def _say_before_switch(
    app: AppContext, result: CutoverResult, decision: Decision, json_out: bool
) -> None:
    """What the CLI said before the switch: forcing past the gate, nothing to re-point,
    the access warnings."""
    if result.forced_past_gate:
        app.err.print(f"warning: forcing past the gate ({result.reason}):")
        for r in decision.reasons:
            app.err.print(f"  - {r}")
    if not result.plans:
        app.err.print(
            f"warning: no function names a source table ({result.functions_checked} checked); "
            "the cutover is recorded and starts the observation window"
        )
    if not json_out:
        _say_warnings(app, result.warnings)


# --- rollback -----------------------------------------------------------------------------


def rollback(
    ctx: typer.Context, json_out: bool = JSON_OPTION, now: str | None = NOW_OPTION
) -> None:
    """Put every re-pointed function back exactly as it was."""
    with _refusals_as_json(json_out):
        app = get(ctx)
        show_rollback(app, decide_rollback(_context(app, now)), json_out)


def show_rollback(app: AppContext, result: RollbackResult, json_out: bool) -> None:
    if result.outcome is None:  # one JSON object and one line, from _refusals_as_json
        raise SafetyGateError(result.refusal or "rollback refused")
    if json_out:
        emit_json(result.to_json())
        return
    outcome = result.outcome
    if outcome.already:
        app.out.print("already rolled back: every function is back on the source tables")
        return
    for note in outcome.notes:
        app.err.print(f"note: {note}")
    app.out.print(
        f"rolled back {len(outcome.undone)} cutover(s): {len(result.functions)} function(s) "
        f"restored to their journaled environments ({len(outcome.restored)} updated)"
    )


# --- decommission -------------------------------------------------------------------------


def decommission(
    ctx: typer.Context,
    yes: bool = typer.Option(
        False, "--yes", help="Also delete tables with deletion protection (turned off first)."
    ),
    json_out: bool = JSON_OPTION,
    now: str | None = NOW_OPTION,
) -> None:
    """Back up and delete the old tables after the observation window (gated)."""
    with _refusals_as_json(json_out):
        app = get(ctx)
        say = (lambda _m: None) if json_out else app.say
        show_decommission(app, run_decommission(_context(app, now), yes=yes, say=say), json_out)


def show_decommission(app: AppContext, result: DecommissionResult, json_out: bool) -> None:
    if result.refusal is not None:  # one JSON object and one line, from _refusals_as_json
        raise SafetyGateError(result.refusal)
    if json_out:
        emit_json(result.to_json())
    if result.status is Status.REFUSED:
        _gate_refused(app, "decommission", result.gate)
    if json_out:
        return
    if result.gate is None:  # nothing left: every old table is gone
        app.out.print(f"already decommissioned: {', '.join(result.already_gone)} are gone")
        return
    for w in result.warnings:
        app.err.print(f"warning: {w}")
    app.out.print("decommissioned:")
    table = Table()
    table.add_column("table", no_wrap=True)
    table.add_column("backup", overflow="fold")
    table.add_column("deletion protection")
    for done in result.removed:
        table.add_row(
            done.table,
            done.backup_arn,
            "turned off (--yes)" if done.deletion_protection_disabled else "off",
        )
    _wide(app).print(table)
    if result.already_gone:
        app.out.print(f"already gone: {', '.join(result.already_gone)}")
