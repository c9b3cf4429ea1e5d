"""Route phases: ROUTE#<route> / PHASE."""

from __future__ import annotations

from typing import Any

from dualwrite.control.table import ControlTable, iso


class Phase:
    """Route phases. The replicator applies a route's changes only from BACKFILLED on."""

    PENDING = "pending"
    BACKFILLING = "backfilling"
    BACKFILLED = "backfilled"


class PhaseRecords(ControlTable):
    def phase(self, route: str) -> dict[str, Any]:
        rec = self.get(f"ROUTE#{route}", "PHASE")
        return rec.data if rec else {"phase": Phase.PENDING}

    def set_phase(self, route: str, phase: str, **extra: Any) -> dict[str, Any]:
        data = self.phase(route)
        data.update(extra)
        data["phase"] = phase
        data[f"{phase}_at"] = iso(self.clock())
        self.put(f"ROUTE#{route}", "PHASE", data)
        return data

    def is_backfilled(self, route: str) -> bool:
        return self.phase(route).get("phase") == Phase.BACKFILLED
