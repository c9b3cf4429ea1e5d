"""One reconcile run: its phases, its units' states and what it found, merged one way.

    digest phase --(every unit done; buckets whose digests differ)--> exact phase --> complete
                 --(every unit done; no bucket differs)-----------------------------> complete

The digest phase folds one scan of each table into per-bucket digests (reconciler.digest);
the exact phase checks item by item only the buckets that differ. `exact=True` starts in the
exact phase with every bucket (`reconcile --exact`). The phase-1 counts of each route
(items scanned, expected, quarantined) are kept when phase 2 starts; the differences come
from the exact phase, each counted once per target key (the source and the target pass may
both judge a key whose source changed in between; the later judgement counts).

The CLI (reconciler.job) runs a run to the end in memory; the scheduled reconciler
(reconciler.scheduled) advances it a time-budgeted slice at a time and keeps it in the control
table between slices (`to_json`/`from_json`): the same merge, the same result. Across slices
the run keeps, per route, the counts and the first MAX_SAMPLES differences (not every
difference: the record must fit in one control item).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from dualwrite.aws.dynamo import RequestCounter
from dualwrite.control.reconcile_results import (
    KINDS,
    MAX_SAMPLES,
    Counts,
    DifferenceSample,
    ReconcileRecord,
)
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import key_id
from reconciler.compare import Difference, Tally, check_result
from reconciler.digest import DEFAULT_BUCKETS, Digests
from reconciler.digest import FORMAT as DIGEST_FORMAT
from reconciler.passes import Checker
from reconciler.spec import RouteSpec
from reconciler.units import Unit, UnitOutcome, UnitState, plan_units, run_units

#: the layout of a saved run; a run saved with another starts over
RUN_FORMAT = 2


class RunPhase(StrEnum):
    DIGEST = "digest"
    EXACT = "exact"


@dataclass
class RouteFindings:
    """One route's confirmed differences: counted once per target key, the first samples."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    samples: list[DifferenceSample] = field(default_factory=list)
    #: this process's differences by target key (the repair needs them whole)
    differences: dict[str, Difference] = field(default_factory=dict)
    _sampled: dict[str, int] | None = None

    def add(self, d: Difference) -> None:
        kid = key_id(d.target_key)
        prior = self.differences.get(kid)
        if self._sampled is None:
            self._sampled = {key_id(s.key): i for i, s in enumerate(self.samples)}
        at = self._sampled.get(kid)
        before = prior.kind if prior is not None else None
        if before is None and at is not None:  # judged in an earlier slice
            before = self.samples[at].kind
        if before is not None:
            self.counts[before] -= 1
        self.counts[d.kind] = self.counts.get(d.kind, 0) + 1
        self.differences[kid] = d
        if at is not None:
            self.samples[at] = d.sample()
        elif before is None and len(self.samples) < MAX_SAMPLES:
            self._sampled[kid] = len(self.samples)
            self.samples.append(d.sample())

    @property
    def found(self) -> Counts:
        return Counts.from_json(self.counts)

    def to_json(self) -> JsonObject:
        return {"counts": dict(self.counts), "samples": [s.to_json() for s in self.samples]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteFindings:
        counts = data.get("counts") or {}
        return cls(
            counts={k: int(counts.get(k, 0)) for k in KINDS},
            samples=[DifferenceSample.from_json(s) for s in data.get("samples") or ()],
        )


@dataclass
class ReconcileRun:
    run_id: str
    started_at: float
    routes: list[str]
    segments: int
    buckets: int = DEFAULT_BUCKETS
    phase: RunPhase = RunPhase.DIGEST
    #: every bucket item by item, from the start (no digest phase)
    exact: bool = False
    units: dict[str, UnitState] = field(default_factory=dict)
    digests: dict[str, Digests] = field(default_factory=dict)
    #: the first phase's counts per route, kept when phase 2 starts
    tallies: dict[str, Tally] = field(default_factory=dict)
    #: per route, the buckets the exact phase checks (the digest phase found them differ)
    only: dict[str, list[int]] = field(default_factory=dict)
    findings: dict[str, RouteFindings] = field(default_factory=dict)
    slices: int = 0
    #: requests made by this process (not kept between slices)
    requests: RequestCounter = field(default_factory=RequestCounter)

    @classmethod
    def start(
        cls,
        specs: Sequence[RouteSpec],
        segments: int,
        *,
        buckets: int = DEFAULT_BUCKETS,
        exact: bool = False,
        now: float = 0.0,
    ) -> ReconcileRun:
        run = cls(
            run_id=uuid.uuid4().hex[:12],
            started_at=now,
            routes=[s.name for s in specs],
            segments=segments,
            buckets=buckets,
            phase=RunPhase.EXACT if exact else RunPhase.DIGEST,
            exact=exact,
        )
        run.units = {u.uid: UnitState() for u in run.phase_units(specs)}
        if not exact:
            run.digests = {s.name: Digests(buckets) for s in specs}
        return run

    # --- where it stands ------------------------------------------------------------------
    def phase_units(self, specs: Sequence[RouteSpec]) -> list[Unit]:
        if self.phase is RunPhase.DIGEST or self.exact:
            return plan_units(specs, self.segments)
        return plan_units([s for s in specs if s.name in self.only], self.segments)

    def fits(self, specs: Sequence[RouteSpec], segments: int, buckets: int) -> bool:
        """Whether this (saved) run is one of these routes, segments and buckets."""
        return (
            self.routes == [s.name for s in specs]
            and self.segments == segments
            and self.buckets == buckets
            and set(self.units) == {u.uid for u in self.phase_units(specs)}
        )

    @property
    def units_done(self) -> int:
        return sum(1 for s in self.units.values() if s.done)

    @property
    def complete(self) -> bool:
        return self.units_done == len(self.units) and (
            self.phase is RunPhase.EXACT or not self.only
        )

    def exact_buckets(self, route: str) -> int | None:
        return None if self.exact else len(self.only.get(route, []))

    def findings_of(self, route: str) -> RouteFindings:
        found = self.findings.get(route)
        if found is None:
            found = self.findings[route] = RouteFindings()
        return found

    # --- running --------------------------------------------------------------------------
    def advance(
        self,
        checker: Checker,
        specs: Sequence[RouteSpec],
        *,
        workers: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_phase: Callable[[Sequence[RouteSpec]], None] | None = None,
    ) -> None:
        """Run the units until the run is complete or `should_stop()` says so (then each
        unit stops after its page). `on_phase(specs)` is told of the routes an exact phase
        goes on with. A unit's failure is raised once the others stopped; the states and
        what the finished units found are kept."""
        while True:
            digest = self.phase is RunPhase.DIGEST
            only = None if digest or self.exact else {r: frozenset(b) for r, b in self.only.items()}
            run_units(
                replace(checker, digest=digest, only=only, buckets=self.buckets),
                self.phase_units(specs),
                self.units,
                workers=workers,
                should_stop=should_stop,
                merge=self._merge,
            )
            if self.units_done < len(self.units) or not self._next_phase(specs):
                return
            if on_phase is not None:
                on_phase([s for s in specs if s.name in self.only])
            if should_stop():
                return

    def _merge(self, outcome: UnitOutcome) -> None:
        for op, n in outcome.requests.counts.items():
            self.requests.add(op, n)
        for route, folded in outcome.digests.items():
            self.digests.setdefault(route, Digests(self.buckets)).add(folded)
        for d in outcome.differences:
            self.findings_of(d.route).add(d)

    def _next_phase(self, specs: Sequence[RouteSpec]) -> bool:
        """The phase's units are all done: True when an exact phase follows."""
        if self.phase is RunPhase.EXACT:
            if self.exact:
                self.tallies = self._merged_tallies()
            return False
        self.tallies = self._merged_tallies()
        self.only = {r: sorted(d.mismatched()) for r, d in self.digests.items() if d.mismatched()}
        if not self.only:
            return False
        self.phase = RunPhase.EXACT
        self.units = {u.uid: UnitState() for u in self.phase_units(specs)}
        return True

    def _merged_tallies(self) -> dict[str, Tally]:
        out: dict[str, Tally] = {}
        for state in self.units.values():
            for route, tally in state.tallies.items():
                out.setdefault(route, Tally()).add(tally)
        return out

    # --- results --------------------------------------------------------------------------
    def differences(self, route: str) -> list[Difference]:
        """The route's confirmed differences found by this process, one per target key."""
        return list(self.findings_of(route).differences.values())

    def check_result(self, spec: RouteSpec, **more: Any) -> ReconcileRecord:
        """A complete run's result of a route, without a repair."""
        findings = self.findings_of(spec.name)
        return check_result(
            spec,
            self.tallies.get(spec.name) or Tally(),
            findings.found,
            findings.samples,
            segments=self.segments,
            method="exact" if self.exact else "digest",
            exact_buckets=self.exact_buckets(spec.name),
            **more,
        )

    # --- between slices -------------------------------------------------------------------
    def to_json(self) -> JsonObject:
        return {
            "run_id": self.run_id,
            "run_format": RUN_FORMAT,
            "digest_format": DIGEST_FORMAT,
            "started_at": self.started_at,
            "routes": self.routes,
            "segments": self.segments,
            "buckets": self.buckets,
            "phase": self.phase.value,
            "exact": self.exact,
            "slices": self.slices,
            "units": {uid: s.to_json() for uid, s in self.units.items()},
            "digests": {r: d.to_json() for r, d in self.digests.items()},
            "tallies": {r: t.to_json() for r, t in self.tallies.items()},
            "only": self.only,
            "findings": {r: f.to_json() for r, f in self.findings.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReconcileRun:
        if data.get("digest_format", 1) != DIGEST_FORMAT:
            # saved by another version: its digests would not cancel out against these
            raise ValueError(f"digests of format {data.get('digest_format', 1)}")
        if data.get("run_format", 1) != RUN_FORMAT:
            # an older layout kept no findings between slices: they would be lost
            raise ValueError(f"a run of format {data.get('run_format', 1)}")
        return cls(
            run_id=str(data["run_id"]),
            started_at=float(data["started_at"]),
            routes=list(data["routes"]),
            segments=int(data["segments"]),
            buckets=int(data.get("buckets", DEFAULT_BUCKETS)),
            phase=RunPhase(data.get("phase", RunPhase.DIGEST)),
            exact=bool(data.get("exact", False)),
            slices=int(data.get("slices", 0)),
            units={uid: UnitState.from_json(s) for uid, s in (data.get("units") or {}).items()},
            digests={r: Digests.from_json(d) for r, d in (data.get("digests") or {}).items()},
            tallies={r: Tally.from_json(t) for r, t in (data.get("tallies") or {}).items()},
            only={r: [int(b) for b in bs] for r, bs in (data.get("only") or {}).items()},
            findings={
                r: RouteFindings.from_json(f) for r, f in (data.get("findings") or {}).items()
            },
        )
