"""Comparing what the mapping makes of a source with what the target holds. Pure.

A difference first seen during a scan is a `Candidate`; it becomes a `Difference` only after
both sides were re-read and still disagree (changes in flight are not drift).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dualwrite.control.reconcile_results import (
    EXTRA,
    KINDS,
    MAX_SAMPLES,
    MISMATCHED,
    MISSING,
    Counts,
    DifferenceSample,
    ReconcileRecord,
)
from dualwrite.control.reconcile_results import parity_percent as _parity_percent
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import AttributeValue, Item, Key, diff_attributes, items_equal

if TYPE_CHECKING:
    from reconciler.spec import RouteSpec

__all__ = ["EXTRA", "KINDS", "MAX_SAMPLES", "MISMATCHED", "MISSING", "Counts"]


def classify(expected: Item | None, actual: Item | None) -> str | None:
    """The kind of difference between the expected and the actual target item, or None."""
    if expected is None:
        return None if actual is None else EXTRA
    if actual is None:
        return MISSING
    return None if items_equal(expected, actual) else MISMATCHED


def same_item(a: Item | None, b: Item | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return items_equal(a, b)


def parity_percent(expected: int, missing: int, extra: int, mismatched: int) -> float:
    """100 x matching / (expected + extra); 100 for an empty route."""
    return _parity_percent(expected, Counts(missing, extra, mismatched))


@dataclass(frozen=True)
class Candidate:
    """A difference seen once; re-read before it counts."""

    route: str
    target_key: Key
    #: the source item's key for directly mapped items (None: orphan or derived)
    source_key: Key | None
    #: the group of a derived item (None for directly mapped items)
    group: AttributeValue | None
    expected: Item | None
    actual: Item | None
    seen_at: float = 0.0

    @property
    def kind(self) -> str | None:
        return classify(self.expected, self.actual)


@dataclass(frozen=True)
class Difference:
    """A confirmed difference: both sides were re-read and still disagree."""

    route: str
    kind: str
    target_key: Key
    source_key: Key | None
    group: AttributeValue | None
    #: what the target should hold (None: nothing) and what it held, as last read
    expected: Item | None
    actual: Item | None
    #: the source item as last read (directly mapped items only; None: absent or derived)
    source_item: Item | None = None

    def attributes(self) -> list[str]:
        """Names of the attributes that differ (never their values)."""
        return diff_attributes(self.expected or {}, self.actual or {})

    def as_candidate(self, seen_at: float = 0.0) -> Candidate:
        return Candidate(
            self.route,
            self.target_key,
            self.source_key,
            self.group,
            self.expected,
            self.actual,
            seen_at,
        )

    def sample(self, repaired: bool = False) -> DifferenceSample:
        return DifferenceSample(self.kind, self.target_key, tuple(self.attributes()), repaired)


@dataclass
class Tally:
    """Per-route counters of one scan (or one slice of one); mergeable and JSON-able."""

    source_items: int = 0
    expected_target_items: int = 0
    target_items: int = 0
    quarantined: int = 0
    differences: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, other: Tally) -> None:
        self.source_items += other.source_items
        self.expected_target_items += other.expected_target_items
        self.target_items += other.target_items
        self.quarantined += other.quarantined
        for kind in KINDS:
            self.differences[kind] = self.differences.get(kind, 0) + other.differences.get(kind, 0)

    def count(self, differences: Iterable[Difference]) -> None:
        for d in differences:
            self.differences[d.kind] = self.differences.get(d.kind, 0) + 1

    def to_json(self) -> JsonObject:
        return {
            "source_items": self.source_items,
            "expected_target_items": self.expected_target_items,
            "target_items": self.target_items,
            "quarantined": self.quarantined,
            "differences": dict(self.differences),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        diffs = data.get("differences") or {}
        return cls(
            source_items=int(data.get("source_items", 0)),
            expected_target_items=int(data.get("expected_target_items", 0)),
            target_items=int(data.get("target_items", 0)),
            quarantined=int(data.get("quarantined", 0)),
            differences={k: int(diffs.get(k, 0)) for k in KINDS},
        )


def count_kinds(differences: Iterable[Difference]) -> Counts:
    out = dict.fromkeys(KINDS, 0)
    for d in differences:
        out[d.kind] += 1
    return Counts.from_json(out)


def route_result(
    route: str,
    source: str,
    target: str,
    tally: Tally,
    *,
    found: Counts | Mapping[str, int],
    remaining: Counts | Mapping[str, int],
    repaired: int = 0,
    settled: int = 0,
    samples: Sequence[DifferenceSample] = (),
    **more: Any,
) -> ReconcileRecord:
    """One route's result (the DESIGN.md shape and a few more fields).

    `found` are the confirmed differences by kind; `remaining` what is left after a repair
    (equal to `found` without one). The counts report what was found; `parity`,
    `parity_percent` and `remaining` describe the state the run leaves behind.
    """
    return ReconcileRecord.build(
        route,
        source=source,
        target=target,
        source_items=tally.source_items,
        expected_target_items=tally.expected_target_items,
        target_items=tally.target_items,
        quarantined=tally.quarantined,
        found=found if isinstance(found, Counts) else Counts.from_json(found),
        remaining=remaining if isinstance(remaining, Counts) else Counts.from_json(remaining),
        samples=samples,
        repaired=repaired,
        settled=settled,
        **more,
    )


def check_result(
    spec: RouteSpec,
    tally: Tally,
    found: Counts,
    samples: Sequence[DifferenceSample],
    **more: Any,
) -> ReconcileRecord:
    """A route's result without a repair: what was found is what remains."""
    return route_result(
        spec.name,
        spec.source,
        spec.target,
        tally,
        found=found,
        remaining=found,
        samples=samples,
        **more,
    )
