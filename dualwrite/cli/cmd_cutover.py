"""`cutover`, `rollback`, `decommission`: the gated last steps of a migration.

Exit codes (DESIGN.md section 4): 0 done (or nothing left to do), 4 a safety gate refused and
nothing changed, 2 bad usage (--force without --reason), 1 anything else (e.g. an update
failed and the functions already changed were put back).

The hidden `--now ISO8601` option moves the clock (tests: the observation window).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.control import ControlStore, iso
from dualwrite.cutover import decommission as decommissioning
from dualwrite.cutover.functions import (
    ApplyError,
    FunctionChange,
    LambdaFunctions,
    Renames,
    TablePair,
    candidates,
    plan_changes,
)
from dualwrite.cutover.gate import (
    Check,
    Decision,
    RouteTables,
    cutover_limits,
    decide_cutover,
    decide_decommission,
    describe_routes,
    gather_cutover,
    gather_decommission,
    renames_of,
)
from dualwrite.cutover.iam import AccessWarning, RoleChecker
from dualwrite.cutover.journal import Entry, Journal, active_cutovers
from dualwrite.cutover.lag import event_source_mappings
from dualwrite.cutover.repoint import run_cutover, run_rollback
from dualwrite.errors import ConfigError, SafetyGateError

GATE_REFUSED = 4

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


def _store(app: AppContext, clock: Callable[[], float]) -> ControlStore | None:
    """The control table with our clock, or None when it does not exist yet."""
    name = app.migration.control_table
    if tables.describe(app.clients.dynamodb, name) is None:
        return None
    return ControlStore(app.clients.dynamodb, name, clock=clock)


def _wide(app: AppContext) -> Console:
    # piped output keeps long ARNs on one line, so tables can be copied from logs
    return app.out if app.out.is_terminal else Console(width=220, highlight=False)


def _refuse(app: AppContext, json_out: bool, what: str, decision: Decision, **extra: Any) -> None:
    if json_out:
        emit_json({"refused": True, "gate": decision.to_json(), **extra})
    app.err.print(f"{what} refused by the safety gate; nothing was changed:")
    for reason in decision.reasons:
        app.err.print(f"  - {reason}")
    raise typer.Exit(GATE_REFUSED)


@contextmanager
def _refusals_as_json(json_out: bool) -> Iterator[None]:
    """With --json, a refusal is still one JSON object on stdout (and one line on stderr)."""
    try:
        yield
    except SafetyGateError as exc:
        if json_out:
            emit_json({"refused": True, "reason": str(exc)})
        raise


def _changes_table(changes: list[dict[str, str]]) -> Table:
    table = Table()
    table.add_column("function", no_wrap=True)
    table.add_column("variable", no_wrap=True)
    table.add_column("old value", overflow="fold")
    table.add_column("new value", overflow="fold")
    for c in changes:
        table.add_row(c["function"], c["variable"], c["old"], c["new"])
    return table


def _journaled_changes(entry: Entry) -> list[dict[str, str]]:
    """What the cutover actually changed (read right before each update), not the plan."""
    return [
        {
            "function": f.name,
            "variable": v,
            "old": f.previous.get(v, ""),
            "new": f.updated.get(v, ""),
        }
        for f in entry.functions
        if f.applied
        for v in f.variables
    ]


def _renamed_arns(plan: FunctionChange, pairs: list[TablePair]) -> dict[str, str]:
    olds = {c.old for c in plan.changes}
    return {p.source_arn: p.target_arn for p in pairs if p.source in olds or p.source_arn in olds}


def _access_warnings(
    app: AppContext, plans: list[FunctionChange], routes: list[RouteTables]
) -> list[AccessWarning]:
    pairs = [p for p in (r.pair() for r in routes) if p is not None]
    # one attempt: moto answers IAM simulation with an HTTP 500, not worth retrying
    iam = Clients(replace(app.settings, max_attempts=1)).client("iam")
    checker = RoleChecker(iam)
    out: list[AccessWarning] = []
    for plan in plans:
        out.extend(checker.check(plan.function, plan.role, _renamed_arns(plan, pairs)))
    return out


def _say_warnings(app: AppContext, warnings: list[AccessWarning]) -> None:
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
    if force and not (reason or "").strip():
        raise ConfigError("--force needs --reason TEXT (the reason is recorded in the journal)")
    migration = app.migration
    clock = clock_from(now)
    store = _store(app, clock)
    routes = describe_routes(migration, app.clients)
    renames: Renames = renames_of(routes)
    lam = LambdaFunctions(app.clients.lambda_)
    found = candidates(lam, migration.cutover.functions, migration.cutover.discover)
    plans = plan_changes(found, renames)
    if (
        not dry_run
        and store is not None
        and not plans
        and active_cutovers(Journal(store).entries())
    ):
        # nothing left to re-point: a re-run is a no-op, whatever the gate would say now
        if json_out:
            emit_json(
                {
                    "dry_run": False,
                    "cut_over": False,
                    "already_cut_over": True,
                    "functions": [],
                    "functions_checked": len(found),
                    "changes": [],
                }
            )
        else:
            app.out.print(
                f"already cut over: no function names a source table ({len(found)} checked)"
            )
        return
    at = clock()
    if store is None:
        decision = Decision(
            (
                Check(
                    "control table",
                    migration.control_table,
                    False,
                    "the control table does not exist: run dualwrite prepare, backfill, reconcile",
                ),
            )
        )
    else:
        decision = decide_cutover(
            gather_cutover(migration, app.clients, store, routes, at), at, cutover_limits(migration)
        )
    warnings = _access_warnings(app, plans, routes)
    changes = [c.to_json() for p in plans for c in p.changes]
    result: dict[str, Any] = {
        "dry_run": dry_run,
        "cut_over": False,
        "gate": decision.to_json(),
        "functions": [p.function for p in plans],
        "functions_checked": len(found),
        "changes": changes,
        "warnings": [w.message() for w in warnings],
    }
    if dry_run:
        if json_out:
            emit_json(result)
            return
        _gate_summary(app, decision)
        if plans:
            app.out.print("cutover would change:")
            _wide(app).print(_changes_table(changes))
        else:
            app.out.print(f"no function names a source table ({len(found)} checked)")
        _say_warnings(app, warnings)
        return
    if not decision.ok and not force:
        _refuse(app, json_out, "cutover", decision, **result)
    if store is None:
        raise SafetyGateError(
            f"the control table {migration.control_table} does not exist, so there is no "
            "journal to record the cutover in: run dualwrite prepare"
        )
    journal = Journal(store)
    if not decision.ok:
        app.err.print(f"warning: forcing past the gate ({reason}):")
        for r in decision.reasons:
            app.err.print(f"  - {r}")
    if not plans:
        app.err.print(
            f"warning: no function names a source table ({len(found)} checked); the cutover "
            "is recorded and starts the observation window"
        )
    if not json_out:
        _say_warnings(app, warnings)
    try:
        entry = run_cutover(
            lam,
            journal,
            plans,
            renames,
            reason=reason,
            forced=force and not decision.ok,
            gate_reasons=tuple(decision.reasons),
        )
    except ApplyError as exc:
        if json_out:
            emit_json(
                {**result, "error": str(exc), "put_back": exc.put_back, "not_put_back": exc.stuck}
            )
        app.err.print(f"error: cutover failed: {exc}")
        raise typer.Exit(1) from None
    result.update(
        cut_over=True,
        changes=_journaled_changes(entry),
        functions=[f.name for f in entry.functions if f.applied],
        at=iso(entry.at),
        journal=entry.sk,
        forced=entry.forced,
        reason=entry.reason,
        observation_days=migration.cutover.observation_days,
    )
    if json_out:
        emit_json(result)
        return
    if result["changes"]:
        app.out.print("cutover changed:")
        _wide(app).print(_changes_table(result["changes"]))
    app.out.print(
        f"cut over {len(result['functions'])} function(s) at {iso(entry.at)}; observe for "
        f"{migration.cutover.observation_days:g} day(s), then `dualwrite decommission` "
        "(`dualwrite rollback` undoes it)"
    )


# --- rollback -----------------------------------------------------------------------------


def rollback(
    ctx: typer.Context, json_out: bool = JSON_OPTION, now: str | None = NOW_OPTION
) -> None:
    """Put every re-pointed function back exactly as it was."""
    with _refusals_as_json(json_out):
        _rollback(get(ctx), json_out, now)


def _rollback(app: AppContext, json_out: bool, now: str | None) -> None:
    store = _store(app, clock_from(now))
    if store is None:
        raise SafetyGateError(
            "nothing to roll back: there is no control table, so no cutover was recorded"
        )
    deleted = [
        r.sk
        for r in store.query(decommissioning.PK)
        if tables.describe(app.clients.dynamodb, r.sk) is None
    ]
    if deleted:
        raise SafetyGateError(
            f"rollback refused: {', '.join(deleted)} were decommissioned (deleted after a backup); "
            "rolling back would point functions at tables that no longer exist. Restore them "
            "from their backups first (see the DECOMMISSION records in the control table)"
        )
    outcome = run_rollback(LambdaFunctions(app.clients.lambda_), Journal(store))
    result: dict[str, Any] = {
        "rolled_back": not outcome.already,
        "already_rolled_back": outcome.already,
        "cutovers": [e.sk for e in outcome.undone],
        "functions": sorted({f.name for e in outcome.undone for f in e.functions}),
        "restored": outcome.restored,
        "notes": outcome.notes,
        "journal": outcome.entry.sk if outcome.entry else None,
    }
    if json_out:
        emit_json(result)
        return
    if outcome.already:
        app.out.print("already rolled back: every function is back on the source tables")
        return
    for note in outcome.notes:
        app.err.print(f"note: {note}")
    app.out.print(
        f"rolled back {len(outcome.undone)} cutover(s): {len(result['functions'])} function(s) "
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
        _decommission(get(ctx), yes, json_out, now)


def _decommission(app: AppContext, yes: bool, json_out: bool, now: str | None) -> None:
    migration = app.migration
    clock = clock_from(now)
    store = _store(app, clock)
    if store is None:
        raise SafetyGateError("no cutover recorded: there is no control table")
    routes = describe_routes(migration, app.clients)
    sources = list(dict.fromkeys(r.source for r in routes))
    gone = [s for s in sources if all(r.source_desc is None for r in routes if r.source == s)]
    result: dict[str, Any] = {
        "decommissioned": [],
        "already_gone": gone,
        "backups": {},
        "deletion_protection_disabled": [],
        "warnings": [],
    }
    if len(gone) == len(sources):
        if json_out:
            emit_json(result)
        else:
            app.out.print(f"already decommissioned: {', '.join(gone)} are gone")
        return
    at = clock()
    journal = Journal(store)
    lam = LambdaFunctions(app.clients.lambda_)
    facts = gather_decommission(migration, app.clients, lam, routes, journal.entries(), at)
    decision = decide_decommission(facts, at, migration.cutover.observation_days, yes=yes)
    result["gate"] = decision.to_json()
    if not decision.ok:
        _refuse(app, json_out, "decommission", decision, **result)
    for r in routes:
        stream = (r.source_desc or {}).get("LatestStreamArn")
        if r.source_desc is not None and stream:
            for m in event_source_mappings(app.clients.lambda_, stream):
                result["warnings"].append(
                    f"event source mapping {m.get('UUID')} ({m.get('FunctionArn')}) reads the "
                    f"stream of {r.source}: remove it (it fails once the table is gone)"
                )
    assert facts.latest is not None  # the gate passed
    doomed = [(t.table, t.deletion_protection) for t in facts.tables if t.exists]
    say = (lambda _m: None) if json_out else app.say
    removed = decommissioning.decommission(
        app.clients.dynamodb, store, doomed, cutover_sk=facts.latest.sk, say=say
    )
    result.update(
        decommissioned=[r.table for r in removed],
        backups={r.table: r.backup_arn for r in removed},
        deletion_protection_disabled=[r.table for r in removed if r.deletion_protection_disabled],
    )
    if json_out:
        emit_json(result)
        return
    for w in result["warnings"]:
        app.err.print(f"warning: {w}")
    app.out.print("decommissioned:")
    table = Table()
    table.add_column("table", no_wrap=True)
    table.add_column("backup", overflow="fold")
    table.add_column("deletion protection")
    for done in removed:
        table.add_row(
            done.table,
            done.backup_arn,
            "turned off (--yes)" if done.deletion_protection_disabled else "off",
        )
    _wide(app).print(table)
    if gone:
        app.out.print(f"already gone: {', '.join(gone)}")
