"""Quarantine: QUARANTINE / <route>#<iso time>#<id>."""

from __future__ import annotations

from typing import Any

from dualwrite.control.table import ControlTable, Record, iso
from dualwrite.errors import ConditionFailedError


class QuarantineRecords(ControlTable):
    def quarantine(self, route: str, reason: str, record: dict[str, Any], source: str = "") -> str:
        """Keep an item or stream record that cannot migrate, with its reason. Returns its id."""
        sk = f"{route}#{iso(self.clock())}#{self._ids()}"
        self.put(
            "QUARANTINE",
            sk,
            {
                "route": route,
                "reason": reason,
                "source": source,
                "record": record,
                "resolved": False,
                "at": iso(self.clock()),
            },
        )
        return sk

    def quarantined(
        self, route: str | None = None, *, unresolved_only: bool = True
    ) -> list[Record]:
        out = []
        for rec in self.query("QUARANTINE", f"{route}#" if route else ""):
            if unresolved_only and rec.data.get("resolved"):
                continue
            out.append(rec)
        return out

    def resolve_quarantine(self, sk: str, note: str) -> None:
        rec = self.get("QUARANTINE", sk)
        if rec is None:
            raise ConditionFailedError(f"no quarantine entry {sk!r}")
        data = dict(rec.data)
        data.update(resolved=True, resolved_at=iso(self.clock()), resolution=note)
        self.put("QUARANTINE", sk, data)
