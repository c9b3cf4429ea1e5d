"""The scheduled check: the same units as the CLI, run in time-budgeted slices.

Each invocation continues the run recorded in the control table (pk RECONCILE, sk RUN):
its phase (digest, then exact for the buckets whose digests differ, as in reconciler.job),
units done, each unfinished unit's last scan key, the per-route tallies and the digests'
open buckets so far, and the confirmed differences (each slice re-reads its candidates
before it pauses).
When every unit is done, each route's result is stored with save_reconcile (what the cutover
gate reads) and the run record is removed; the next invocation starts a new run. A run
older than `max_run_age_s`, planned for other routes or segments, or saved with another
digest format (reconciler.digest.FORMAT: an older version's), starts over.
The scheduled check never repairs: that is an operator's decision (`reconcile --repair`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import RequestCounter
from dualwrite.config import Migration
from dualwrite.control import ControlStore
from reconciler.compare import Difference, Tally, check_result
from reconciler.digest import DEFAULT_BUCKETS, Digests
from reconciler.digest import FORMAT as DIGEST_FORMAT
from reconciler.passes import DEFAULT_PAGE_SIZE, Checker, Unit, UnitState, plan_units, run_units
from reconciler.spec import RouteSpec, resolve_routes

RUN_PK = "RECONCILE"
RUN_SK = "RUN"
DEFAULT_SEGMENTS = 4
MAX_RUN_AGE_S = 6 * 3600.0


DIGEST = "digest"
EXACT = "exact"


@dataclass
class RunState:
    run_id: str
    started_at: float
    routes: list[str]
    segments: int
    buckets: int = DEFAULT_BUCKETS
    #: "digest" (phase 1: fold both tables into digests) or "exact" (phase 2: the buckets
    #: whose digests differ, item by item)
    phase: str = DIGEST
    units: dict[str, UnitState] = field(default_factory=dict)
    digests: dict[str, Digests] = field(default_factory=dict)
    #: phase 1's counts per route, kept when phase 2 starts
    tallies: dict[str, Tally] = field(default_factory=dict)
    only: dict[str, list[int]] = field(default_factory=dict)
    slices: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "digest_format": DIGEST_FORMAT,
            "started_at": self.started_at,
            "routes": self.routes,
            "segments": self.segments,
            "buckets": self.buckets,
            "phase": self.phase,
            "slices": self.slices,
            "units": {uid: s.to_json() for uid, s in self.units.items()},
            "digests": {r: d.to_json() for r, d in self.digests.items()},
            "tallies": {r: t.to_json() for r, t in self.tallies.items()},
            "only": self.only,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        if data.get("digest_format", 1) != DIGEST_FORMAT:
            # saved by another version: its digests would not cancel out against these
            raise ValueError(f"digests of format {data.get('digest_format', 1)}")
        return cls(
            run_id=str(data["run_id"]),
            started_at=float(data["started_at"]),
            routes=list(data["routes"]),
            segments=int(data["segments"]),
            buckets=int(data.get("buckets", DEFAULT_BUCKETS)),
            phase=str(data.get("phase", DIGEST)),
            slices=int(data.get("slices", 0)),
            units={uid: UnitState.from_json(s) for uid, s in (data.get("units") or {}).items()},
            digests={r: Digests.from_json(d) for r, d in (data.get("digests") or {}).items()},
            tallies={r: Tally.from_json(t) for r, t in (data.get("tallies") or {}).items()},
            only={r: [int(b) for b in bs] for r, bs in (data.get("only") or {}).items()},
        )


def load_run(store: ControlStore) -> RunState | None:
    rec = store.get(RUN_PK, RUN_SK)
    if rec is None:
        return None
    try:
        return RunState.from_json(rec.data)
    except (KeyError, TypeError, ValueError):
        return None  # an unreadable record: start over


def save_run(store: ControlStore, run: RunState) -> None:
    store.put(RUN_PK, RUN_SK, run.to_json())


def _phase_units(run: RunState, specs: Sequence[RouteSpec]) -> list[Unit]:
    if run.phase == DIGEST:
        return plan_units(specs, run.segments)
    return plan_units([s for s in specs if s.name in run.only], run.segments)


def _new_run(specs: Sequence[RouteSpec], segments: int, buckets: int, now: float) -> RunState:
    run = RunState(
        run_id=uuid.uuid4().hex[:12],
        started_at=now,
        routes=[s.name for s in specs],
        segments=segments,
        buckets=buckets,
    )
    run.units = {u.uid: UnitState() for u in _phase_units(run, specs)}
    run.digests = {s.name: Digests(buckets) for s in specs}
    return run


def _merged_tallies(run: RunState) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for state in run.units.values():
        for route, tally in state.tallies.items():
            out.setdefault(route, Tally()).add(tally)
    return out


def run_slice(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    *,
    should_stop: Callable[[], bool],
    routes: Sequence[str] | None = None,
    segments: int | None = None,
    settle_s: float = 1.0,
    page_size: int = DEFAULT_PAGE_SIZE,
    workers: int | None = None,
    buckets: int = DEFAULT_BUCKETS,
    max_run_age_s: float = MAX_RUN_AGE_S,
    wall: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Advance the scheduled run by one slice; finish it when every unit is done."""
    clients = clients.shared()  # many short-lived worker threads, one client each service
    specs = resolve_routes(migration, clients, list(routes) if routes else None)
    by_name = {s.name: s for s in specs}
    segs = segments or DEFAULT_SEGMENTS
    run = load_run(store)
    if (
        run is None
        or run.routes != [s.name for s in specs]
        or run.segments != segs
        or run.buckets != buckets
        or set(run.units) != {u.uid for u in _phase_units(run, specs)}
        or wall() - run.started_at > max_run_age_s
    ):
        run = _new_run(specs, segs, buckets, wall())
    run.slices += 1
    requests = RequestCounter()
    differences: list[Difference] = []
    while True:
        units = _phase_units(run, specs)
        digest = run.phase == DIGEST
        checker = Checker(
            clients,
            by_name,
            page_size=page_size,
            settle_s=settle_s,
            digest=digest,
            only=None if digest else {r: frozenset(bs) for r, bs in run.only.items()},
            buckets=run.buckets,
        )
        try:
            outcome = run_units(checker, units, run.units, workers=workers, should_stop=should_stop)
        except BaseException:
            save_run(store, run)  # what finished is kept even when a unit failed
            raise
        for op, n in outcome.requests.counts.items():
            requests.add(op, n)
        for route, folded in outcome.digests.items():
            run.digests.setdefault(route, Digests(run.buckets)).add(folded)
        differences += outcome.differences
        done = all(s.done for s in run.units.values())
        if not done or run.phase == EXACT:
            break
        # phase 1 complete: keep its counts; go on with the buckets that differ, if any
        run.tallies = _merged_tallies(run)
        run.only = {r: sorted(d.mismatched()) for r, d in run.digests.items() if d.mismatched()}
        if not run.only:
            break
        run.phase = EXACT
        run.units = {u.uid: UnitState() for u in _phase_units(run, specs)}
        if should_stop():
            break
    save_run(store, run)
    done_units = sum(1 for s in run.units.values() if s.done)
    complete = done_units == len(run.units) and (run.phase == EXACT or not run.only)
    summary: dict[str, Any] = {
        "run_id": run.run_id,
        "slices": run.slices,
        "phase": run.phase,
        "units": len(run.units),
        "units_done": done_units,
        "complete": complete,
        "requests": dict(sorted(requests.counts.items())),
    }
    if not complete:
        return summary
    found_by_route = _merged_tallies(run) if run.phase == EXACT else {}
    results = []
    for spec in specs:
        tally = run.tallies.get(spec.name) or Tally()
        found = found_by_route.get(spec.name, Tally()).differences
        samples = [d.sample() for d in differences if d.route == spec.name]
        result = check_result(spec, tally, found, samples)
        result.update(
            mode="scheduled",
            method="digest",
            exact_buckets=len(run.only.get(spec.name, [])),
            run_id=run.run_id,
            slices=run.slices,
            segments=segs,
            started_at=run.started_at,
            quarantine_resolved=0,
        )
        store.save_reconcile(spec.name, result)
        results.append(result)
    store.delete(RUN_PK, RUN_SK)
    summary["parity"] = all(r["parity"] for r in results)
    summary["routes"] = results
    return summary
