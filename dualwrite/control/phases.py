"""Route phases: ROUTE#<route> / PHASE."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from dualwrite.control.table import ControlTable, iso
from dualwrite.jsondoc import JsonObject


class Phase(StrEnum):
    """Route phases. The replicator applies a route's changes only from BACKFILLED on."""

    PENDING = "pending"
    BACKFILLING = "backfilling"
    BACKFILLED = "backfilled"


#: what a backfill's lifecycle records (the rest are the `<phase>_at` times)
_LIFECYCLE = (
    "backfill_started_at",
    "backfill_completed_at",
    "needs_repair",
    "repair_reason",
    "total_segments",
)


@dataclass(frozen=True)
class RoutePhase:
    """A route's phase and the times of its transitions (epoch s; `<phase>_at` are ISO)."""

    phase: Phase = Phase.PENDING
    backfill_started_at: float | None = None
    backfill_completed_at: float | None = None
    needs_repair: bool = False
    repair_reason: str | None = None
    total_segments: int | None = None
    pending_at: str | None = None
    backfilling_at: str | None = None
    backfilled_at: str | None = None
    #: a put-if-absent re-run of a BACKFILLED route completed (the phase stays)
    rerun_completed_at: float | None = None

    @property
    def backfilled(self) -> bool:
        return self.phase is Phase.BACKFILLED

    @property
    def lifecycle_started(self) -> bool:
        return self.backfill_started_at is not None or self.total_segments is not None

    def entered(self, phase: Phase, at: float, **changes: Any) -> RoutePhase:
        """This route moved to `phase` at `at` (its `<phase>_at` time), with `changes`."""
        moved = replace(self, phase=phase, **changes)
        if phase is Phase.PENDING:
            return replace(moved, pending_at=iso(at))
        if phase is Phase.BACKFILLING:
            return replace(moved, backfilling_at=iso(at))
        return replace(moved, backfilled_at=iso(at))

    def to_json(self) -> JsonObject:
        """The stored JSON object (and `status --json` phase_detail): the lifecycle fields
        once a backfill started (cleared ones as null), the phase times that were set."""
        out: JsonObject = {"phase": self.phase.value}
        if self.lifecycle_started:
            out.update({name: getattr(self, name) for name in _LIFECYCLE})
        for name in ("pending_at", "backfilling_at", "backfilled_at", "rerun_completed_at"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoutePhase:
        def number(name: str) -> float | None:
            value = data.get(name)
            return float(value) if isinstance(value, int | float) else None

        total = data.get("total_segments")
        reason = data.get("repair_reason")
        times = {
            name: str(data[name])
            for name in ("pending_at", "backfilling_at", "backfilled_at")
            if data.get(name)
        }
        return cls(
            phase=Phase(data.get("phase") or Phase.PENDING),
            backfill_started_at=number("backfill_started_at"),
            backfill_completed_at=number("backfill_completed_at"),
            needs_repair=bool(data.get("needs_repair")),
            repair_reason=str(reason) if reason else None,
            total_segments=int(total) if isinstance(total, int) else None,
            rerun_completed_at=number("rerun_completed_at"),
            **times,
        )


class PhaseRecords(ControlTable):
    def phase(self, route: str) -> RoutePhase:
        rec = self.get(f"ROUTE#{route}", "PHASE")
        return RoutePhase.from_json(rec.data) if rec else RoutePhase()

    def save_phase(self, route: str, phase: RoutePhase) -> RoutePhase:
        self.put(f"ROUTE#{route}", "PHASE", phase.to_json())
        return phase

    def set_phase(self, route: str, phase: Phase, **changes: Any) -> RoutePhase:
        """Move a route to `phase` now, keeping what its record had, with `changes`."""
        return self.save_phase(route, self.phase(route).entered(phase, self.clock(), **changes))

    def is_backfilled(self, route: str) -> bool:
        return self.phase(route).backfilled
