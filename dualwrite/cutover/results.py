"""What cutover, rollback and decommission decided and did: typed results the CLI displays.

`to_json` is the `--json` object of each command (DESIGN.md section 4): the keys it had
before the results were typed, plus `"status"`: `"done"`, `"refused"` (a gate said no;
nothing changed), `"rolled_back"` (a check after the switch failed and every change was put
back) or `"failed"` (an update failed; what had changed was put back, `not_put_back` names
what could not be). Exit 0 only for done, 4 for refused and rolled back, 1 for failed.

The safeguards (section 10) add: `"parameters"` (the SSM parameters planned, or re-pointed
once the switch ran), `"references"` (dry run: every other place naming an old table, each
`{kind, name, detail}`), after the switch `"alarm_clones"`, `"smoke_tests"` and `"watch"`;
a rolled back cutover says why in `"reason"` (also `"failure"`; the --force reason is then
`"forced_reason"`) and what was put back in `"undone"`. `rollback --json` lists the
parameters restored and the clones deleted under the same `"parameters"`/`"alarm_clones"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dualwrite.control import QuarantineEntry, iso
from dualwrite.cutover.functions import FunctionChange, VariableChange
from dualwrite.cutover.gate import Check, Decision
from dualwrite.cutover.iam import AccessWarning
from dualwrite.cutover.journal import Entry
from dualwrite.cutover.references import Reference, Skipped
from dualwrite.cutover.repoint import RollbackOutcome
from dualwrite.cutover.reverse_journal import DirectionSwitch
from dualwrite.cutover.safeguards import AfterSwitch, PreCheck
from dualwrite.jsondoc import JsonObject

GATE_REFUSED = 4


class Status(StrEnum):
    DONE = "done"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"

    @property
    def exit_code(self) -> int:
        return {Status.DONE: 0, Status.FAILED: 1}.get(self, GATE_REFUSED)


def journaled_changes(entry: Entry) -> tuple[VariableChange, ...]:
    """What the cutover actually changed (read right before each update), not the plan."""
    return tuple(
        VariableChange(f.name, v, f.previous.get(v, ""), f.updated.get(v, ""))
        for f in entry.functions
        if f.applied
        for v in f.variables
    )


@dataclass(frozen=True)
class Removed:
    """A table decommission backed up and deleted."""

    table: str
    backup_arn: str
    deletion_protection_disabled: bool

    def to_json(self) -> JsonObject:
        return {
            "table": self.table,
            "backup_arn": self.backup_arn,
            "deletion_protection_disabled": self.deletion_protection_disabled,
        }


@dataclass(frozen=True)
class ApplyFailure:
    """An update failed: `put_back` were restored, `not_put_back` could not be."""

    message: str
    put_back: tuple[str, ...]
    not_put_back: tuple[str, ...]


@dataclass(frozen=True)
class CutoverResult:
    status: Status
    dry_run: bool = False
    already_cut_over: bool = False
    #: None only when no gate ran (already cut over, or a refusal without one)
    gate: Decision | None = None
    plans: tuple[FunctionChange, ...] = ()
    functions_checked: int = 0
    warnings: tuple[AccessWarning, ...] = ()
    #: why the gate was forced (--reason)
    reason: str | None = None
    #: the journal entry, once the switch ran
    entry: Entry | None = None
    observation_days: float = 0.0
    failure: ApplyFailure | None = None
    #: a refusal that is no gate check (there is no journal to record the cutover in)
    refusal: str | None = None
    #: the checks run right after the switch (empty: none configured)
    post_switch: tuple[Check, ...] = ()
    #: the rollback a failed post-switch check ran
    rollback: RollbackOutcome | None = None
    #: what the safeguards found before anything changed (None: no gate ran)
    precheck: PreCheck | None = None
    #: dry run: every other place naming an old table, and the kinds that could not be read
    references: tuple[Reference, ...] = ()
    references_skipped: tuple[Skipped, ...] = ()
    #: what the safeguards did after the switch
    safeguards: AfterSwitch | None = None
    #: dry run: whether the real cutover would re-point functions now (the gate passes or
    #: is forced, and some function names a source table); a drain still settling makes
    #: the real one wait where the dry run only reports
    would_cut_over: bool = False

    @property
    def rollback_reason(self) -> str | None:
        """Why every change was put back (one line), or None."""
        if self.rollback is None:
            return None
        if self.safeguards is not None and self.safeguards.failure is not None:
            return self.safeguards.failure
        return "; ".join(f"{c.subject}: {c.detail}" for c in self.post_switch if not c.ok)

    @property
    def cut_over(self) -> bool:
        return self.status is Status.DONE and self.entry is not None

    @property
    def forced_past_gate(self) -> bool:
        """The gate refused and --force went past it (the switch was tried)."""
        return (
            self.gate is not None
            and not self.gate.ok
            and not self.dry_run
            and self.status is not Status.REFUSED
        )

    @property
    def changes(self) -> tuple[VariableChange, ...]:
        if self.cut_over and self.entry is not None:
            return journaled_changes(self.entry)
        return tuple(c for p in self.plans for c in p.changes)

    @property
    def functions(self) -> tuple[str, ...]:
        if self.cut_over and self.entry is not None:
            return tuple(f.name for f in self.entry.functions if f.applied)
        return tuple(p.function for p in self.plans)

    def to_json(self) -> JsonObject:
        head: JsonObject = {"status": str(self.status)}
        if self.refusal is not None:
            return {**head, "refused": True, "reason": self.refusal}
        if self.already_cut_over:
            return {
                **head,
                "dry_run": False,
                "cut_over": False,
                "already_cut_over": True,
                "functions": [],
                "functions_checked": self.functions_checked,
                "changes": [],
            }
        gate = self.gate.to_json() if self.gate is not None else None
        if self.status is Status.REFUSED:
            head.update(refused=True, gate=gate)
        body: JsonObject = {
            "dry_run": self.dry_run,
            "cut_over": self.cut_over,
            "gate": gate,
            "functions": list(self.functions),
            "functions_checked": self.functions_checked,
            "changes": [c.to_json() for c in self.changes],
            "warnings": [w.message() for w in self.warnings],
        }
        if self.dry_run:  # the dry run itself succeeded ("done"): what the real one would do
            body["would_cut_over"] = self.would_cut_over
        if self.failure is not None:
            body.update(
                error=self.failure.message,
                put_back=list(self.failure.put_back),
                not_put_back=list(self.failure.not_put_back),
            )
        if self.entry is not None and self.failure is None:
            body.update(
                at=iso(self.entry.at),
                journal=self.entry.sk,
                forced=self.entry.forced,
                reason=self.entry.reason,
                observation_days=self.observation_days,
            )
        if self.entry is not None:
            body["reverse"] = switch_json(self.entry.reverse)
        body.update(self._safeguards_json())
        if self.post_switch:
            body["post_switch"] = [c.to_json() for c in self.post_switch]
        if self.rollback is not None:
            # a rollback that could not put everything back (a clone it may not delete) is
            # status "failed", and not rolled back either
            body["rolled_back"] = self.status is Status.ROLLED_BACK
            body["rollback_journal"] = self.rollback.entry.sk if self.rollback.entry else None
            body.update(
                reason=self.rollback_reason,
                failure=self.rollback_reason,
                forced_reason=self.reason,
                undone=self.rollback.safeguards.to_json(),
            )
        return {**head, **body}

    def _safeguards_json(self) -> JsonObject:
        out: JsonObject = {}
        if self.safeguards is not None:
            s = self.safeguards.to_json()
            out.update({k: s[k] for k in ("parameters", "alarm_clones", "smoke_tests", "watch")})
            out["safeguard_notes"] = s["notes"]
        elif self.precheck is not None:
            out["parameters"] = [p.to_json() for p in self.precheck.parameters]
        if self.dry_run:
            out["references"] = [r.to_json() for r in self.references]
            out["references_skipped"] = [k.to_json() for k in self.references_skipped]
        return out


def switch_json(switch: DirectionSwitch | None) -> JsonObject | None:
    """The switch of direction as `cutover --json` / `rollback --json` show it: whether
    reverse replication is on, O, and per route T and the overlap saved."""
    if switch is None:
        return None
    return {
        "on": switch.reverse,
        "overlap_s": switch.overlap_s,
        "note": switch.note,
        "routes": [r.to_json() for r in switch.routes],
        "event_source_mappings": [m.to_json() for m in switch.mappings],
    }


DRAIN_ADVICE = (
    "the reverse direction still drains the writes made to the new tables before the "
    "rollback: `dualwrite replicate --until-caught-up` (or the deployed replicator) finishes "
    "it, then forward resumes"
)


@dataclass(frozen=True)
class RollbackResult:
    status: Status
    outcome: RollbackOutcome | None = None
    #: why nothing was rolled back (status refused)
    refusal: str | None = None
    #: a function could not be restored (status failed; run rollback again)
    failure: str | None = None
    #: quarantined target changes the old schema cannot hold, since the cutover
    unrepresentable: tuple[QuarantineEntry, ...] = ()
    #: routes whose reverse direction still drains (forward live once it has)
    draining: tuple[str, ...] = ()

    @property
    def pending(self) -> tuple[str, ...]:
        """Routes whose switch to forward waits for the cutover's own drain."""
        switch = self.outcome.switch if self.outcome else None
        return (
            tuple(f"{r.route}: {r.pending}" for r in switch.routes if r.pending) if switch else ()
        )

    @property
    def drain_pending(self) -> bool:
        """The reverse direction still drains on some route (forward waits for it)."""
        return bool(self.draining)

    @property
    def already(self) -> bool:
        return self.outcome is not None and self.outcome.already

    @property
    def functions(self) -> tuple[str, ...]:
        undone = self.outcome.undone if self.outcome else ()
        return tuple(sorted({f.name for e in undone for f in e.functions}))

    def to_json(self) -> JsonObject:
        if self.failure is not None:
            return {"status": str(self.status), "rolled_back": False, "error": self.failure}
        if self.outcome is None:
            return {"status": str(self.status), "refused": True, "reason": self.refusal}
        o = self.outcome
        return {
            "reverse": switch_json(o.switch),
            "drain_pending": self.drain_pending,
            "draining": list(self.draining),
            "drain": DRAIN_ADVICE if self.drain_pending else None,
            "switch_pending": list(self.pending),
            "unrepresentable": [
                {"id": q.id, "route": q.route, "reason": q.reason, "at": q.at}
                for q in self.unrepresentable
            ],
            "status": str(self.status),
            "rolled_back": not o.already,
            "already_rolled_back": o.already,
            "cutovers": [e.sk for e in o.undone],
            "functions": list(self.functions),
            "restored": [r.to_json() for r in o.restored],
            "parameters": [p.to_json() for p in o.safeguards.parameters],
            "alarm_clones": [c.to_json() for c in o.safeguards.clones],
            "not_put_back": list(o.safeguards.failed),
            "notes": list(o.notes),
            "journal": o.entry.sk if o.entry else None,
        }


@dataclass(frozen=True)
class DecommissionResult:
    status: Status
    already_gone: tuple[str, ...] = ()
    gate: Decision | None = None
    removed: tuple[Removed, ...] = ()
    warnings: tuple[str, ...] = ()
    #: why nothing was decommissioned, when no gate ran (no control table)
    refusal: str | None = None

    def to_json(self) -> JsonObject:
        head: JsonObject = {"status": str(self.status)}
        if self.refusal is not None:
            return {**head, "refused": True, "reason": self.refusal}
        if self.status is Status.REFUSED and self.gate is not None:
            head.update(refused=True, gate=self.gate.to_json())
        body: JsonObject = {
            "decommissioned": [r.table for r in self.removed],
            "already_gone": list(self.already_gone),
            "backups": {r.table: r.backup_arn for r in self.removed},
            "deletion_protection_disabled": [
                r.table for r in self.removed if r.deletion_protection_disabled
            ],
            "warnings": list(self.warnings),
        }
        if self.gate is not None:
            body["gate"] = self.gate.to_json()
        return {**head, **body}
