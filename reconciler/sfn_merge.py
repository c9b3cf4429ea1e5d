"""The reconcile state machine's records and how its segments' results add up. Pure.

A run (one execution) checks its routes in two Distributed Map phases over the same scan
units as the CLI (reconciler.passes.plan_units): every unit folds its segment into
per-bucket digests (`DIGEST`), the combine step adds them up per route, and only the units
of routes whose digests differ run again, item by item in the differing buckets (`EXACT`).
Each unit's result is a `UnitRecord` in the control table (the map's children return only
{"done": ...}: a Distributed Map's aggregated output is limited to 256 KiB); `RunRecord` is
what the steps share: routes, segmentation, and after the combine step the first phase's
counts and the open buckets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.control.reconcile_results import Counts, DifferenceSample
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import key_id
from reconciler.compare import KINDS, MAX_SAMPLES, Tally
from reconciler.digest import DEFAULT_BUCKETS, Digests
from reconciler.digest import FORMAT as DIGEST_FORMAT
from reconciler.units import UnitState

DIGEST = "digest"
EXACT = "exact"
PHASES = (DIGEST, EXACT)
#: items per scan segment when the input gives no total_segments (about 3 s of one worker)
ITEMS_PER_SEGMENT = 100_000
MIN_SEGMENTS = 4
MAX_SEGMENTS = 10_000
#: the map's item list is unit numbers in the state's payload (256 KiB): at most this many
MAX_UNITS = 30_000
#: judgements a unit record lists by key (~70 bytes each: at most ~7 KB a record, which the
#: finish step reads for every exact unit), so that a key judged by two units (its source
#: deleted between the source pass and the target pass) counts once, as `dualwrite
#: reconcile` counts it. A unit with more differences lists its first ones: a route with
#: that many differences is far from parity, and one key counted twice changes no decision
MAX_JUDGED = 100


def default_segments(largest_table_items: int, tables: int) -> int:
    """Segments per table: ~ITEMS_PER_SEGMENT items each, within the payload's bounds."""
    wanted = -(-max(0, largest_table_items) // ITEMS_PER_SEGMENT)
    ceiling = max(1, min(MAX_SEGMENTS, MAX_UNITS // max(1, tables)))
    return max(1, min(max(MIN_SEGMENTS, wanted), ceiling))


@dataclass(frozen=True)
class RunRecord:
    """One execution's plan and, after the combine step, the first phase's outcome."""

    run_id: str
    execution: str
    routes: tuple[str, ...]
    segments: int
    units: int
    settle_s: float = 1.0
    buckets: int = DEFAULT_BUCKETS
    started_at: float = 0.0
    #: per route, the first phase's counts (set by the combine step)
    tallies: Mapping[str, Tally] = field(default_factory=dict)
    #: per route, the buckets whose digests differ (set by the combine step)
    open: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    combined: bool = False

    @property
    def exact_routes(self) -> tuple[str, ...]:
        return tuple(r for r in self.routes if self.open.get(r))

    def to_json(self) -> JsonObject:
        return {
            "run_id": self.run_id,
            "execution": self.execution,
            "digest_format": DIGEST_FORMAT,
            "routes": list(self.routes),
            "segments": self.segments,
            "units": self.units,
            "settle_s": self.settle_s,
            "buckets": self.buckets,
            "started_at": self.started_at,
            "tallies": {r: t.to_json() for r, t in self.tallies.items()},
            "open": {r: list(b) for r, b in self.open.items()},
            "combined": self.combined,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        if data.get("digest_format") != DIGEST_FORMAT:
            raise ValueError(f"a run saved with digest format {data.get('digest_format')}")
        return cls(
            run_id=str(data["run_id"]),
            execution=str(data.get("execution", "")),
            routes=tuple(data["routes"]),
            segments=int(data["segments"]),
            units=int(data["units"]),
            settle_s=float(data.get("settle_s", 1.0)),
            buckets=int(data.get("buckets", DEFAULT_BUCKETS)),
            started_at=float(data.get("started_at", 0.0)),
            tallies={r: Tally.from_json(t) for r, t in (data.get("tallies") or {}).items()},
            open={r: tuple(int(b) for b in bs) for r, bs in (data.get("open") or {}).items()},
            combined=bool(data.get("combined")),
        )


@dataclass(frozen=True)
class UnitRecord:
    """What one unit of one phase has done so far (a unit may take several invocations)."""

    phase: str
    uid: str
    state: UnitState
    #: per route, what the unit folded into the digests (digest phase)
    digests: Mapping[str, Digests] = field(default_factory=dict)
    #: confirmed differences (exact phase): keys and attribute names only, never values
    samples: tuple[Mapping[str, Any], ...] = ()
    #: the exact phase's confirmed differences by key, at most MAX_JUDGED
    judged: tuple[Judgement, ...] = ()

    @property
    def done(self) -> bool:
        return self.state.done

    def to_json(self) -> JsonObject:
        return {
            "phase": self.phase,
            "uid": self.uid,
            "state": self.state.to_json(),
            "digests": {r: d.to_json() for r, d in self.digests.items()},
            "samples": [dict(s) for s in self.samples],
            "judged": [j.to_json() for j in self.judged],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnitRecord:
        return cls(
            phase=str(data["phase"]),
            uid=str(data["uid"]),
            state=UnitState.from_json(dict(data.get("state") or {})),
            digests={r: Digests.from_json(d) for r, d in (data.get("digests") or {}).items()},
            samples=tuple(data.get("samples") or ()),
            judged=tuple(Judgement.from_json(j) for j in data.get("judged") or ()),
        )


@dataclass(frozen=True)
class Judgement:
    """One confirmed difference of a unit, by target key (its key_id), and when the unit's
    invocation confirmed it."""

    route: str
    key: str
    kind: str
    at: float

    def to_json(self) -> list[Any]:
        return [self.route, self.key, self.kind, self.at]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Judgement:
        route, key, kind, at = data
        return cls(str(route), str(key), str(kind), float(at))


def advanced(
    before: UnitRecord | None,
    phase: str,
    uid: str,
    state: UnitState,
    digests: Mapping[str, Digests],
    samples: Sequence[Mapping[str, Any]],
    judged: Sequence[Judgement] = (),
) -> UnitRecord:
    """A unit's record after one more invocation: digests, samples and judgements added to
    what was."""
    total: dict[str, Digests] = {}
    for source in (before.digests if before else {}, digests):
        for route, d in source.items():
            into = total.setdefault(route, Digests(d.buckets))
            into.add(d)
    kept = (tuple(before.samples) if before else ()) + tuple(samples)
    listed = (tuple(before.judged) if before else ()) + tuple(judged)
    return UnitRecord(phase, uid, state, total, kept[:MAX_SAMPLES], listed[:MAX_JUDGED])


def missing_units(expected: Iterable[str], records: Iterable[UnitRecord]) -> list[str]:
    """The planned units without a finished record (the map should have left none)."""
    done = {r.uid for r in records if r.done}
    return [uid for uid in expected if uid not in done]


@dataclass(frozen=True)
class Combined:
    """The first phase added up: per route, its counts and the buckets that differ."""

    tallies: dict[str, Tally]
    open: dict[str, tuple[int, ...]]


def combine(routes: Sequence[str], records: Iterable[UnitRecord], buckets: int) -> Combined:
    """Add up the digest phase's units: a bucket is open when the route's expected items
    (from its source units) and held items (from its target units) do not cancel out."""
    digests = {r: Digests(buckets) for r in routes}
    tallies = {r: Tally() for r in routes}
    for record in records:
        for route, d in record.digests.items():
            if route in digests:
                digests[route].add(d)
        for route, t in record.state.tallies.items():
            if route in tallies:
                tallies[route].add(t)
    open_ = {r: tuple(sorted(d.mismatched())) for r, d in digests.items()}
    return Combined(tallies, {r: b for r, b in open_.items() if b})


@dataclass(frozen=True)
class Found:
    """The exact phase added up for one route: confirmed differences by kind, samples."""

    counts: Counts
    samples: list[DifferenceSample]


def found_by_route(routes: Sequence[str], records: Iterable[UnitRecord]) -> dict[str, Found]:
    """The exact phase's units added up. A key judged by two units (the source pass found it
    missing, then its source was deleted and the target pass found it extra) counts once,
    as the unit that confirmed it last judged it, as `dualwrite reconcile` counts it."""
    records = list(records)
    counts = {r: dict.fromkeys(KINDS, 0) for r in routes}
    for record in records:
        for route, t in record.state.tallies.items():
            if route in counts:
                for kind in KINDS:
                    counts[route][kind] += int(t.differences.get(kind, 0))
    # the last judgement of each key, and the record it is in (a record saved before
    # judgements were listed dedupes nothing: its count and its sample both stand)
    final: dict[tuple[str, str], tuple[Judgement, int]] = {}
    for n, record in enumerate(records):
        for j in record.judged:
            if j.route not in counts:
                continue
            before = final.get((j.route, j.key))
            if before is None:
                final[j.route, j.key] = (j, n)
                continue
            stale = before[0] if before[0].at <= j.at else j
            counts[j.route][stale.kind] -= 1
            if stale is before[0]:
                final[j.route, j.key] = (j, n)
    samples: dict[str, list[DifferenceSample]] = {r: [] for r in routes}
    sampled: set[tuple[str, str]] = set()
    #: a stale judgement's sample, for a key whose last judgement's record kept none
    superseded: dict[tuple[str, str], DifferenceSample] = {}
    for n, record in enumerate(records):
        listed = {(j.route, j.key) for j in record.judged}
        for data in record.samples:
            route = str(data.get("route", ""))
            if route not in samples:
                continue
            sample = DifferenceSample.from_json(data)
            at = (route, key_id(sample.key))
            last = final.get(at)
            if last is not None and at in listed and last[1] != n:
                superseded.setdefault(at, sample)  # the key's later judgement counts
                continue
            sampled.add(at)
            if len(samples[route]) < MAX_SAMPLES:  # one a counted difference (per record)
                samples[route].append(sample)
    for at, sample in superseded.items():
        route = at[0]
        if at not in sampled and len(samples[route]) < MAX_SAMPLES:
            # the later unit had no room for its sample: the key, of the kind judged last
            # (its attributes are that unit's, unknown here)
            samples[route].append(DifferenceSample(final[at][0].kind, sample.key))
    return {r: Found(Counts.from_json(counts[r]), samples[r]) for r in routes}
