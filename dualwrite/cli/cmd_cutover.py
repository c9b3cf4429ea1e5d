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
from rich.table import Table

from dualwrite.aws.clients import Clients
from dualwrite.cli import cutover_views as views
from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.control import iso
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.decommission import DecommissionFailed, run_decommission
from dualwrite.cutover.gate import Decision
from dualwrite.cutover.iam import RoleChecker
from dualwrite.cutover.results import CutoverResult, DecommissionResult, RollbackResult, Status
from dualwrite.cutover.rollback import rollback as decide_rollback
from dualwrite.cutover.safeguard_views import LiveWatch
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


def _gate_refused(app: AppContext, what: str, decision: Decision | None) -> None:
    app.err.print(f"{what} refused by the safety gate; nothing was changed:")
    for reason in decision.reasons if decision else []:
        app.err.print(f"  - {reason}", markup=False)  # reasons name keys and tables
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
    alarms = len(app.migration.cutover.watch_alarms)
    live = LiveWatch(
        app.err,
        "the re-pointed functions' Errors and Throttles"
        + (f" and {alarms} alarm(s)" if alarms else ""),
    )
    try:
        result = decide_cutover(
            _context(app, now), request, roles=_roles(app), observer=live.observer()
        )
    finally:
        live.close()
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
    if result.gate is None:  # a re-run finishing the checks of a cutover killed after its
        # switch: the gate ran then (this path asserted a gate, and exited 1 after "done")
        app.err.print("finishing a cutover killed after its switch: its checks run now")
    elif result.dry_run:
        if not json_out:
            views.show_dry_run(app, result, result.gate)
        return
    elif result.status is Status.REFUSED:
        _gate_refused(app, "cutover", result.gate)
    else:
        views.say_before_switch(app, result, result.gate, json_out)
    if result.failure is not None:
        app.err.print(f"error: cutover failed: {result.failure.message}")
        raise typer.Exit(result.status.exit_code)
    if result.rollback is not None:
        views.say_rolled_back(app, result, json_out)
        raise typer.Exit(result.status.exit_code)
    if json_out:
        return
    entry = result.entry
    assert entry is not None  # done and not dry: the switch ran
    if result.changes:
        app.out.print("cutover changed:")
        views.wide(app).print(views.changes_table(result.changes))
    views.say_safeguards(app, result)
    views.say_reverse(app, entry.reverse)
    app.out.print(
        f"cut over {len(result.functions)} function(s) at {iso(entry.at)}; observe for "
        f"{result.observation_days:g} day(s), then `dualwrite decommission` "
        "(`dualwrite rollback` undoes it)"
    )


# --- rollback -----------------------------------------------------------------------------


def rollback(
    ctx: typer.Context, json_out: bool = JSON_OPTION, now: str | None = NOW_OPTION
) -> None:
    """Put every re-pointed function back exactly as it was."""
    with _refusals_as_json(json_out):
        app = get(ctx)
        show_rollback(app, decide_rollback(_context(app, now)), json_out)


def rollback_flow(app: AppContext) -> int:
    """`rollback` as the demo runs it: shown, and its exit code."""
    try:
        show_rollback(app, decide_rollback(_context(app, None)), False)
    except typer.Exit as stop:
        return int(stop.exit_code)
    return 0


def show_rollback(app: AppContext, result: RollbackResult, json_out: bool) -> None:
    if result.failure is not None:
        if json_out:
            emit_json(result.to_json())
        app.err.print(f"error: {result.failure}")
        raise typer.Exit(result.status.exit_code)
    if result.outcome is None:  # one JSON object and one line, from _refusals_as_json
        raise SafetyGateError(result.refusal or "rollback refused")
    if json_out:
        emit_json(result.to_json())
        raise typer.Exit(result.status.exit_code)
    views.say_rollback_direction(app, result)
    outcome = result.outcome
    for failed in outcome.safeguards.failed:
        app.err.print(f"error: COULD NOT put back {failed} (run dualwrite rollback again)")
    if outcome.already:
        app.out.print("already rolled back: every function is back on the source tables")
        return
    for note in outcome.notes:
        app.err.print(f"note: {note}")
    app.out.print(
        f"rolled back {len(outcome.undone)} cutover(s): {len(result.functions)} function(s) "
        f"restored to their journaled environments ({len(outcome.restored)} updated)"
        + _safeguards_put_back(outcome.safeguards.parameters, outcome.safeguards.clones)
    )
    raise typer.Exit(result.status.exit_code)


def _safeguards_put_back(parameters: tuple[object, ...], clones: tuple[object, ...]) -> str:
    if not parameters and not clones:
        return ""
    return f", {len(parameters)} SSM parameter(s) restored, {len(clones)} alarm clone(s) deleted"


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
        try:
            result = run_decommission(_context(app, now), yes=yes, say=say)
        except DecommissionFailed as exc:  # say what is already deleted, then fail
            if json_out:
                emit_json({**exc.result.to_json(), "status": "failed", "error": str(exc)})
            else:
                for r in exc.result.removed:
                    app.out.print(f"deleted {r.table} (backup {r.backup_arn})", markup=False)
            raise
        show_decommission(app, result, json_out)


def show_decommission(app: AppContext, result: DecommissionResult, json_out: bool) -> None:
    if result.refusal is not None:  # one JSON object and one line, from _refusals_as_json
        raise SafetyGateError(result.refusal)
    if json_out:
        emit_json(result.to_json())
    if result.status is Status.REFUSED:
        _gate_refused(app, "decommission", result.gate)
    if json_out:
        return
    if result.gate is None and not result.removed:  # nothing left: every old table is gone
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
    views.wide(app).print(table)
    if result.already_gone:
        app.out.print(f"already gone: {', '.join(result.already_gone)}")
