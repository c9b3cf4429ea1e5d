"""The cutover journal in the control table (pk "CUTOVER", sk "<iso time>#<action>").

A cutover entry is written BEFORE any function changes (status "applying", with each
function's environment as planned), updated after each function (the environment actually
replaced, read right before the update), and closed as "applied", or "reverted" when the
all-or-nothing put-back ran. A crashed cutover therefore leaves an "applying" entry that
rollback can still undo. A rollback entry names the cutovers it undid, and each undone
cutover records `rolled_back_by`. A cutover also records each SSM parameter it re-pointed
and each alarm clone it makes just before making it (`parameters`, `alarm_clones`; undoing
one never made is harmless), `checked` once the checks after the switch passed (a re-run
runs them again on an applied cutover killed before), and `error` says why a check after
the switch put everything back; a rollback entry records the parameters it restored and
the clones it deleted in the same fields.

The pure queries (active cutovers, latest cutover) work on plain lists of entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from dualwrite.control import ControlStore, iso
from dualwrite.cutover.alarms import AlarmClone
from dualwrite.cutover.reverse_journal import DirectionSwitch
from dualwrite.cutover.ssm import ParameterChange
from dualwrite.jsondoc import JsonObject

PK = "CUTOVER"


class Action(StrEnum):
    CUTOVER = "cutover"
    ROLLBACK = "rollback"


class EntryStatus(StrEnum):
    APPLYING = "applying"
    APPLIED = "applied"
    REVERTED = "reverted"
    FAILED = "failed"


CUTOVER = Action.CUTOVER
ROLLBACK = Action.ROLLBACK
APPLYING = EntryStatus.APPLYING
APPLIED = EntryStatus.APPLIED
REVERTED = EntryStatus.REVERTED
FAILED = EntryStatus.FAILED


@dataclass(frozen=True)
class FunctionEntry:
    name: str
    previous: Mapping[str, str]
    updated: Mapping[str, str]
    variables: tuple[str, ...]
    applied: bool = False

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "previous": dict(self.previous),
            "updated": dict(self.updated),
            "variables": list(self.variables),
            "applied": self.applied,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FunctionEntry:
        return cls(
            name=str(data["name"]),
            previous=dict(data.get("previous") or {}),
            updated=dict(data.get("updated") or {}),
            variables=tuple(data.get("variables") or ()),
            applied=bool(data.get("applied")),
        )


@dataclass(frozen=True)
class Entry:
    sk: str
    action: Action
    at: float
    status: EntryStatus
    functions: tuple[FunctionEntry, ...] = ()
    reason: str | None = None
    forced: bool = False
    gate_reasons: tuple[str, ...] = ()
    rolled_back_by: str | None = None
    rolled_back_at: float | None = None
    undoes: tuple[str, ...] = ()
    error: str | None = None
    parameters: tuple[ParameterChange, ...] = ()
    alarm_clones: tuple[AlarmClone, ...] = ()
    checked: bool = False
    #: when the last function was re-pointed (E of DESIGN.md section 8)
    repointed_at: float | None = None
    #: the switch of direction (section 8), journaled as it is made
    reverse: DirectionSwitch | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_effective_cutover(self) -> bool:
        """A cutover that changed (or may have changed) functions and was not undone."""
        return (
            self.action == CUTOVER
            and self.status in (APPLYING, APPLIED)
            and self.rolled_back_by is None
        )

    def to_json(self) -> JsonObject:
        return {
            "action": str(self.action),
            "at": self.at,
            "at_iso": iso(self.at),
            "status": str(self.status),
            "functions": [f.to_json() for f in self.functions],
            "reason": self.reason,
            "forced": self.forced,
            "gate_reasons": list(self.gate_reasons),
            "rolled_back_by": self.rolled_back_by,
            "rolled_back_at": self.rolled_back_at,
            "undoes": list(self.undoes),
            "error": self.error,
            "parameters": [p.to_json() for p in self.parameters],
            "alarm_clones": [c.to_json() for c in self.alarm_clones],
            "checked": self.checked,
            "repointed_at": self.repointed_at,
            "reverse": self.reverse.to_json() if self.reverse is not None else None,
            **dict(self.extra),
        }

    @classmethod
    def from_json(cls, sk: str, data: Mapping[str, Any]) -> Entry:
        known = set(cls.__dataclass_fields__) | {"at_iso"}
        return cls(
            sk=sk,
            action=Action(str(data.get("action"))),
            at=float(data.get("at", 0.0)),
            status=EntryStatus(str(data.get("status"))),
            functions=tuple(FunctionEntry.from_json(f) for f in data.get("functions") or ()),
            reason=data.get("reason"),
            forced=bool(data.get("forced")),
            gate_reasons=tuple(data.get("gate_reasons") or ()),
            rolled_back_by=data.get("rolled_back_by"),
            rolled_back_at=data.get("rolled_back_at"),
            undoes=tuple(data.get("undoes") or ()),
            error=data.get("error"),
            parameters=tuple(ParameterChange.from_json(p) for p in data.get("parameters") or ()),
            alarm_clones=tuple(AlarmClone.from_json(c) for c in data.get("alarm_clones") or ()),
            checked=bool(data.get("checked")),
            repointed_at=_float_or_none(data.get("repointed_at")),
            reverse=DirectionSwitch.from_json(data["reverse"]) if data.get("reverse") else None,
            extra={k: v for k, v in data.items() if k not in known},
        )

    def with_function(self, fn: FunctionEntry) -> Entry:
        functions = tuple(fn if f.name == fn.name else f for f in self.functions)
        return replace(self, functions=functions)


def _float_or_none(value: Any) -> float | None:
    return float(value) if value is not None else None


# --- pure queries -------------------------------------------------------------------------


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.at, e.sk))


def active_cutovers(entries: Iterable[Entry]) -> list[Entry]:
    """Cutovers in effect (applied, or crashed mid-way) and not rolled back, oldest first."""
    return [e for e in ordered(entries) if e.is_effective_cutover]


def unchecked_cutovers(entries: Iterable[Entry]) -> list[Entry]:
    """Applied cutovers in effect whose checks after the switch never finished (killed)."""
    return [e for e in active_cutovers(entries) if e.status == APPLIED and not e.checked]


def latest_cutover(entries: Iterable[Entry]) -> Entry | None:
    """The latest cutover that changed something (rolled back or not); reverted ones are
    ignored, since they left every function as it was."""
    cutovers = [e for e in ordered(entries) if e.action == CUTOVER and e.status != REVERTED]
    return cutovers[-1] if cutovers else None


# --- adapter ------------------------------------------------------------------------------


@dataclass
class Journal:
    store: ControlStore
    #: entries that could not be read by the last `entries()` (sk, why): skipped, so that a
    #: damaged entry does not stop a rollback; the results name them
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def entries(self) -> list[Entry]:
        out: list[Entry] = []
        self.unreadable = []
        for r in self.store.query(PK):
            try:
                out.append(Entry.from_json(r.sk, r.data))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.unreadable.append((r.sk, f"{type(exc).__name__}: {exc}"))
        return ordered(out)

    def begin(self, action: Action, **fields: Any) -> Entry:
        at = self.store.now()
        entry = Entry(sk=f"{iso(at)}#{action}", action=action, at=at, status=APPLYING, **fields)
        self.save(entry)
        return entry

    def save(self, entry: Entry) -> Entry:
        self.store.put(PK, entry.sk, entry.to_json())
        return entry
