"""Reconcile results: ROUTE#<route> / RECONCILE, the record the cutover gate trusts.

The gate reads typed fields (parity, at, the counts), never keys of a dict; `report` keeps
the rest of the route's entry as `reconcile --json` printed it, for `status` to show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dualwrite.control.table import ControlTable

_TYPED = ("route", "at", "parity", "missing", "extra", "mismatched")


@dataclass(frozen=True)
class ReconcileRecord:
    route: str
    at: float
    parity: bool
    missing: int = 0
    extra: int = 0
    mismatched: int = 0
    report: Mapping[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"missing": self.missing, "extra": self.extra, "mismatched": self.mismatched}

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report,
            "route": self.route,
            "parity": self.parity,
            **self.counts(),
            "at": self.at,
        }

    @classmethod
    def from_json(cls, route: str, data: Mapping[str, Any]) -> ReconcileRecord:
        at = data.get("at")
        return cls(
            route=str(data.get("route") or route),
            # a record without a time is never fresh: the gate refuses it
            at=float(at) if isinstance(at, int | float) else 0.0,
            parity=data.get("parity") is True,
            missing=int(data.get("missing") or 0),
            extra=int(data.get("extra") or 0),
            mismatched=int(data.get("mismatched") or 0),
            report={k: v for k, v in data.items() if k not in _TYPED},
        )


class ReconcileRecords(ControlTable):
    def save_reconcile(self, route: str, result: Mapping[str, Any]) -> ReconcileRecord:
        record = ReconcileRecord.from_json(route, {**result, "at": self.clock()})
        self.put(f"ROUTE#{route}", "RECONCILE", record.to_json())
        return record

    def last_reconcile(self, route: str) -> ReconcileRecord | None:
        rec = self.get(f"ROUTE#{route}", "RECONCILE")
        return ReconcileRecord.from_json(route, rec.data) if rec else None
