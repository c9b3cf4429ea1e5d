"""Reconcile results: ROUTE#<route> / RECONCILE, the record the cutover gate trusts.

A ReconcileRecord is one route's whole result as the reconciler builds it (CLI or scheduled):
the gate reads its typed fields (parity, at, the counts), `reconcile --json` prints
`to_result_json()` per route, the control table keeps `to_json()` (the same with `at`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dualwrite.control.table import ControlTable
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import Key, item_from_lambda, to_lambda_json

MISSING = "missing"
EXTRA = "extra"
MISMATCHED = "mismatched"
KINDS = (MISSING, EXTRA, MISMATCHED)

#: differences listed per route in a result (keys and attribute names only, never values)
MAX_SAMPLES = 20


@dataclass(frozen=True)
class Counts:
    """Differences by kind."""

    missing: int = 0
    extra: int = 0
    mismatched: int = 0

    @property
    def any(self) -> bool:
        return bool(self.missing or self.extra or self.mismatched)

    def to_json(self) -> dict[str, int]:
        return {MISSING: self.missing, EXTRA: self.extra, MISMATCHED: self.mismatched}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Counts:
        data = data or {}
        return cls(*(int(data.get(k) or 0) for k in KINDS))


@dataclass(frozen=True)
class DifferenceSample:
    """One confirmed difference as a result lists it: its key and the names of the attributes
    that differ, never their values."""

    kind: str
    key: Key
    attributes: tuple[str, ...] = ()
    repaired: bool = False

    def to_json(self) -> JsonObject:
        return {
            "kind": self.kind,
            "key": to_lambda_json(self.key),
            "attributes": list(self.attributes),
            "repaired": self.repaired,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DifferenceSample:
        key = data.get("key")
        return cls(
            kind=str(data.get("kind", "")),
            key=item_from_lambda(key) if isinstance(key, dict) else {},
            attributes=tuple(str(a) for a in data.get("attributes") or ()),
            repaired=bool(data.get("repaired")),
        )


def parity_percent(expected: int, counts: Counts) -> float:
    """100 x matching / (expected + extra); 100 for an empty route."""
    denominator = expected + counts.extra
    if denominator <= 0:
        return 100.0
    matching = max(0, expected - counts.missing - counts.mismatched)
    return round(100.0 * matching / denominator, 4)


@dataclass(frozen=True)
class ReconcileRecord:
    """One route's reconcile result. The counts (missing/extra/mismatched) are what was found;
    `remaining`, `parity` and `parity_percent` the state the run leaves behind."""

    route: str
    #: when it was recorded (epoch s; 0: not recorded, never fresh for the gate)
    at: float = 0.0
    parity: bool = False
    missing: int = 0
    extra: int = 0
    mismatched: int = 0
    source: str = ""
    target: str = ""
    source_items: int = 0
    expected_target_items: int = 0
    target_items: int = 0
    quarantined: int = 0
    repaired: int = 0
    #: differences a concurrent writer fixed first (the repair's condition failed)
    settled: int = 0
    remaining: Counts = field(default_factory=Counts)
    parity_percent: float = 100.0
    found_parity_percent: float = 100.0
    differences: tuple[DifferenceSample, ...] = ()
    #: "check", "repair", "scheduled" or "state-machine"
    mode: str = "check"
    notes: tuple[str, ...] = ()
    #: what fixes the differences left that a repair cannot (foreign writes, refusals)
    advice: tuple[str, ...] = ()
    #: some difference left is one a (re-)repair can fix
    repair_helps: bool = False
    quarantine_resolved: int = 0
    segments: int | None = None
    #: "digest" (digests first, then the buckets that differ) or "exact" (every item)
    method: str = "digest"
    #: buckets checked item by item (None: every one, method "exact")
    exact_buckets: int | None = None
    #: the scheduled run's id, slices and start (None for the CLI's runs)
    run_id: str | None = None
    slices: int | None = None
    started_at: float | None = None
    #: why the parity metrics could not be published (never stored)
    metrics_error: str | None = None

    @classmethod
    def build(
        cls,
        route: str,
        *,
        source: str,
        target: str,
        source_items: int,
        expected_target_items: int,
        target_items: int,
        quarantined: int,
        found: Counts,
        remaining: Counts,
        samples: Sequence[DifferenceSample],
        repaired: int = 0,
        settled: int = 0,
        **more: Any,
    ) -> ReconcileRecord:
        """A route's result from its counts: parity and the percentages follow from them."""
        return cls(
            route=route,
            parity=not remaining.any,
            missing=found.missing,
            extra=found.extra,
            mismatched=found.mismatched,
            source=source,
            target=target,
            source_items=source_items,
            expected_target_items=expected_target_items,
            target_items=target_items,
            quarantined=quarantined,
            repaired=repaired,
            settled=settled,
            remaining=remaining,
            parity_percent=parity_percent(expected_target_items, remaining),
            found_parity_percent=parity_percent(expected_target_items, found),
            differences=tuple(samples[:MAX_SAMPLES]),
            **more,
        )

    def counts(self) -> dict[str, int]:
        return {MISSING: self.missing, EXTRA: self.extra, MISMATCHED: self.mismatched}

    def to_result_json(self) -> JsonObject:
        """The route's entry of `reconcile --json` (DESIGN.md section 4)."""
        out: JsonObject = {
            "route": self.route,
            "source": self.source,
            "target": self.target,
            "source_items": self.source_items,
            "expected_target_items": self.expected_target_items,
            "target_items": self.target_items,
            **self.counts(),
            "quarantined": self.quarantined,
            "repaired": self.repaired,
            "settled": self.settled,
            "remaining": self.remaining.to_json(),
            "parity": self.parity,
            "parity_percent": self.parity_percent,
            "found_parity_percent": self.found_parity_percent,
            "differences": [d.to_json() for d in self.differences],
            "mode": self.mode,
        }
        if self.run_id is not None:  # the scheduled reconciler's
            out.update(
                method=self.method,
                exact_buckets=self.exact_buckets,
                run_id=self.run_id,
                slices=self.slices,
                segments=self.segments,
                started_at=self.started_at,
                quarantine_resolved=self.quarantine_resolved,
            )
        else:
            if self.notes:
                out["notes"] = list(self.notes)
            if self.advice:
                out["advice"] = list(self.advice)
            out.update(
                repair_helps=self.repair_helps,
                quarantine_resolved=self.quarantine_resolved,
                segments=self.segments,
                method=self.method,
                exact_buckets=self.exact_buckets,
            )
        if self.metrics_error is not None:
            out["metrics_error"] = self.metrics_error
        return out

    def to_json(self) -> JsonObject:
        """The stored record (and `status --json` last_reconcile): the result, then the
        fields the gate reads and the time."""
        out = self.to_result_json()
        out.pop("metrics_error", None)
        for name in ("route", "parity", *KINDS):
            out[name] = out.pop(name)
        out["at"] = self.at
        return out

    @classmethod
    def from_json(cls, route: str, data: Mapping[str, Any]) -> ReconcileRecord:
        def number(name: str) -> float | None:
            value = data.get(name)
            return float(value) if isinstance(value, int | float) else None

        def whole(name: str) -> int | None:
            value = data.get(name)
            return int(value) if isinstance(value, int | float) else None

        found = Counts.from_json(data)
        samples = [d for d in data.get("differences") or () if isinstance(d, Mapping)]
        return cls(
            route=str(data.get("route") or route),
            # a record without a time is never fresh: the gate refuses it
            at=number("at") or 0.0,
            parity=data.get("parity") is True,
            missing=found.missing,
            extra=found.extra,
            mismatched=found.mismatched,
            source=str(data.get("source") or ""),
            target=str(data.get("target") or ""),
            source_items=whole("source_items") or 0,
            expected_target_items=whole("expected_target_items") or 0,
            target_items=whole("target_items") or 0,
            quarantined=whole("quarantined") or 0,
            repaired=whole("repaired") or 0,
            settled=whole("settled") or 0,
            remaining=Counts.from_json(data.get("remaining") or data),
            parity_percent=number("parity_percent") or 0.0,
            found_parity_percent=number("found_parity_percent") or 0.0,
            differences=tuple(DifferenceSample.from_json(d) for d in samples),
            mode=str(data.get("mode") or "check"),
            notes=tuple(str(n) for n in data.get("notes") or ()),
            advice=tuple(str(n) for n in data.get("advice") or ()),
            repair_helps=data.get("repair_helps") is True,
            quarantine_resolved=whole("quarantine_resolved") or 0,
            segments=whole("segments"),
            method=str(data.get("method") or "digest"),
            exact_buckets=whole("exact_buckets"),
            run_id=str(data["run_id"]) if data.get("run_id") else None,
            slices=whole("slices"),
            started_at=number("started_at"),
        )


class ReconcileRecords(ControlTable):
    def save_reconcile(self, record: ReconcileRecord) -> ReconcileRecord:
        """Record a route's result now; returns it with its time. A result whose reads began
        before those of the recorded one is not recorded: a scheduled run reads over many
        slices (hours), and ending after an operator's `reconcile` had found drift it would
        otherwise replace that drift with an older, "fresh" parity the gate trusts."""
        saved = replace(record, at=self.clock(), metrics_error=None)
        current = self.last_reconcile(record.route)
        if current is not None and _as_of(current) > _as_of(saved):
            return saved
        self.put(f"ROUTE#{record.route}", "RECONCILE", saved.to_json())
        return saved

    def last_reconcile(self, route: str) -> ReconcileRecord | None:
        rec = self.get(f"ROUTE#{route}", "RECONCILE")
        return ReconcileRecord.from_json(route, rec.data) if rec else None


def _as_of(record: ReconcileRecord) -> float:
    """When a result's reads began (its run's start; for a record without one, its save)."""
    return record.started_at or record.at
