"""The scheduled check: the CLI's run (reconciler.run), advanced in time-budgeted slices.

Each invocation continues the run recorded in the control table (pk RECONCILE, sk RUN):
its phase (digest, then exact for the buckets whose digests differ), units done, each
unfinished unit's last scan key, the per-route tallies and the digests' open buckets so far,
and the confirmed differences' counts and first samples (each slice re-reads its candidates
before it pauses).
When every unit is done, each route's result is stored with save_reconcile (what the cutover
gate reads) and the run record is removed; the next invocation starts a new run. A run
older than `max_run_age_s`, planned for other routes or segments, or saved with another
digest format (reconciler.digest.FORMAT: an older version's), starts over.
The scheduled check never repairs: that is an operator's decision (`reconcile --repair`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from dualwrite.aws.clients import Clients
from dualwrite.config import Migration
from dualwrite.control import ControlStore, ReconcileRecord
from dualwrite.jsondoc import JsonObject
from reconciler.digest import DEFAULT_BUCKETS
from reconciler.passes import DEFAULT_PAGE_SIZE, Checker
from reconciler.run import ReconcileRun
from reconciler.spec import resolve_routes

RUN_PK = "RECONCILE"
RUN_SK = "RUN"
DEFAULT_SEGMENTS = 4
MAX_RUN_AGE_S = 6 * 3600.0


@dataclass(frozen=True)
class SliceResult:
    """What one slice did; with the routes' results once the run completed."""

    run_id: str
    slices: int
    phase: str
    units: int
    units_done: int
    complete: bool
    requests: Mapping[str, int]
    routes: tuple[ReconcileRecord, ...] = ()

    @property
    def parity(self) -> bool:
        return all(r.parity for r in self.routes)

    def to_json(self) -> JsonObject:
        out: JsonObject = {
            "run_id": self.run_id,
            "slices": self.slices,
            "phase": self.phase,
            "units": self.units,
            "units_done": self.units_done,
            "complete": self.complete,
            "requests": dict(self.requests),
        }
        if self.complete:
            out["parity"] = self.parity
            out["routes"] = [r.to_result_json() for r in self.routes]
        return out


def load_run(store: ControlStore) -> ReconcileRun | None:
    rec = store.get(RUN_PK, RUN_SK)
    if rec is None:
        return None
    try:
        return ReconcileRun.from_json(rec.data)
    except (KeyError, TypeError, ValueError):
        return None  # an unreadable record, or another version's: start over


def save_run(store: ControlStore, run: ReconcileRun) -> None:
    store.put(RUN_PK, RUN_SK, run.to_json())


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
) -> SliceResult:
    """Advance the scheduled run by one slice; finish it when every unit is done."""
    clients = clients.shared()  # many short-lived worker threads, one client each service
    specs = resolve_routes(migration, clients, list(routes) if routes else None)
    segs = segments or DEFAULT_SEGMENTS
    run = load_run(store)
    if (
        run is None
        or run.exact
        or not run.fits(specs, segs, buckets)
        or wall() - run.started_at > max_run_age_s
    ):
        run = ReconcileRun.start(specs, segs, buckets=buckets, now=wall())
    run.slices += 1
    checker = Checker(clients, {s.name: s for s in specs}, page_size=page_size, settle_s=settle_s)
    try:
        run.advance(checker, specs, workers=workers, should_stop=should_stop)
    finally:
        save_run(store, run)  # what finished is kept even when a unit failed
    summary = SliceResult(
        run_id=run.run_id,
        slices=run.slices,
        phase=run.phase.value,
        units=len(run.units),
        units_done=run.units_done,
        complete=run.complete,
        requests=dict(sorted(run.requests.counts.items())),
    )
    if not run.complete:
        return summary
    results = []
    for spec in specs:
        result = run.check_result(
            spec,
            mode="scheduled",
            run_id=run.run_id,
            slices=run.slices,
            started_at=run.started_at,
        )
        results.append(store.save_reconcile(result))
    store.delete(RUN_PK, RUN_SK)
    return replace(summary, routes=tuple(results))
