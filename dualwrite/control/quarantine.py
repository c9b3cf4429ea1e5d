"""Quarantine: QUARANTINE / <route>#<iso time>#<id>."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dualwrite.control.table import ControlTable, Record, iso
from dualwrite.errors import ConditionFailedError
from dualwrite.jsondoc import JsonObject


@dataclass(frozen=True)
class QuarantineEntry:
    """An item or stream record that cannot migrate, with its reason."""

    #: the entry's sort key, which `quarantine --resolve` takes
    id: str
    route: str
    reason: str
    #: "backfill", "replicator", ... (empty when unknown)
    source: str = ""
    #: the item (Lambda JSON) or stream record as it was refused: AWS's own shape
    record: Mapping[str, Any] = field(default_factory=dict)
    resolved: bool = False
    at: str | None = None
    resolved_at: str | None = None
    resolution: str | None = None

    @property
    def sk(self) -> str:
        return self.id

    def to_json(self) -> JsonObject:
        """The stored JSON object (the id is the item's sort key, not part of it)."""
        out: JsonObject = {
            "route": self.route,
            "reason": self.reason,
            "source": self.source,
            "record": dict(self.record),
            "resolved": self.resolved,
            "at": self.at,
        }
        if self.resolved:
            out.update(resolved_at=self.resolved_at, resolution=self.resolution)
        return out

    @classmethod
    def from_record(cls, rec: Record) -> QuarantineEntry:
        d = rec.data
        record = d.get("record")
        return cls(
            id=rec.sk,
            route=str(d.get("route") or rec.sk.split("#", 1)[0]),
            reason=str(d.get("reason") or ""),
            source=str(d.get("source") or ""),
            record=record if isinstance(record, dict) else {},
            resolved=bool(d.get("resolved")),
            at=str(d["at"]) if d.get("at") else None,
            resolved_at=str(d["resolved_at"]) if d.get("resolved_at") else None,
            resolution=str(d["resolution"]) if d.get("resolution") is not None else None,
        )


class QuarantineRecords(ControlTable):
    def quarantine_id(self, route: str) -> str:
        """A new entry's id (sort key): the route, the time, a unique suffix."""
        return f"{route}#{iso(self.clock())}#{self._ids()}"

    def quarantine(
        self, route: str, reason: str, record: JsonObject, source: str = "", sk: str | None = None
    ) -> str:
        """Keep an item or stream record that cannot migrate, with its reason. Returns its id
        (`sk`: one chosen before, with quarantine_id; writing it again replaces it)."""
        sk = sk or self.quarantine_id(route)
        entry = QuarantineEntry(
            sk, route, reason, source=source, record=record, at=iso(self.clock())
        )
        self.put("QUARANTINE", sk, entry.to_json())
        return sk

    def quarantine_entry(self, sk: str) -> QuarantineEntry | None:
        rec = self.get("QUARANTINE", sk)
        return QuarantineEntry.from_record(rec) if rec else None

    def quarantined(
        self, route: str | None = None, *, unresolved_only: bool = True
    ) -> list[QuarantineEntry]:
        out = []
        for rec in self.query("QUARANTINE", f"{route}#" if route else ""):
            entry = QuarantineEntry.from_record(rec)
            if unresolved_only and entry.resolved:
                continue
            out.append(entry)
        return out

    def resolve_quarantine(self, sk: str, note: str) -> None:
        entry = self.quarantine_entry(sk)
        if entry is None:
            raise ConditionFailedError(f"no quarantine entry {sk!r}")
        resolved = replace(entry, resolved=True, resolved_at=iso(self.clock()), resolution=note)
        self.put("QUARANTINE", sk, resolved.to_json())
