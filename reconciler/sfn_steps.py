"""The reconcile state machine's steps (infra/statemachine/reconcile.asl.yaml). Adapter.

- begin: take the lock (reconciler.sfn_lock), resolve the routes, plan the scan units as the
  CLI does (reconciler.passes.plan_units) and save the run record.
- run_unit: one invocation of one unit of one phase (a Distributed Map child): resume from
  its record, scan until done or out of time, save the record; {"done": bool}.
- combine: add up the digest phase (reconciler.sfn_merge.combine); list the exact phase's
  units (only routes whose digests differ, only in the differing buckets).
- finish: add up the exact phase, store each route's result with save_reconcile exactly as
  `dualwrite reconcile` does (the cutover gate reads it), release the lock. The handler
  emits the Parity metrics from the results returned.

Records live under pk RECONCILE#SFN#<run id> and expire (control table TTL) after a week.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import RequestCounter
from dualwrite.config import Migration
from dualwrite.control import ControlStore
from dualwrite.control.reconcile_results import ReconcileRecord
from dualwrite.errors import ConfigError
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import key_id
from reconciler import sfn_lock
from reconciler.compare import check_result
from reconciler.digest import DEFAULT_BUCKETS
from reconciler.passes import DEFAULT_PAGE_SIZE, Checker
from reconciler.sfn_merge import (
    DIGEST,
    EXACT,
    PHASES,
    Judgement,
    RunRecord,
    UnitRecord,
    advanced,
    combine,
    default_segments,
    found_by_route,
    missing_units,
)
from reconciler.spec import RouteSpec, resolve_routes
from reconciler.units import Unit, UnitState, plan_units

RUN_PK_PREFIX = "RECONCILE#SFN#"
RUN_SK = "RUN"
UNIT_SK_PREFIX = "UNIT#"
KEEP_S = 7 * 86400.0


@dataclass
class Steps:
    """What the steps share in one Lambda container."""

    migration: Migration
    clients: Clients
    store: ControlStore
    #: route names -> resolved specs (DescribeTable once per container)
    specs: dict[tuple[str, ...], list[RouteSpec]]

    @classmethod
    def of(cls, migration: Migration, clients: Clients, store: ControlStore) -> Steps:
        return cls(migration, clients, store, {})

    def resolve(self, names: Sequence[str] | None) -> list[RouteSpec]:
        key = tuple(names or ())
        if key not in self.specs:
            self.specs[key] = resolve_routes(self.migration, self.clients, list(key) or None)
        return self.specs[key]

    # --- records ------------------------------------------------------------------------
    def _pk(self, run_id: str) -> str:
        return f"{RUN_PK_PREFIX}{run_id}"

    def _expires(self) -> float:
        return self.store.now() + KEEP_S

    def load_run(self, run_id: str) -> RunRecord:
        rec = self.store.get(self._pk(run_id), RUN_SK)
        if rec is None:
            raise ConfigError(f"reconcile run {run_id} has no record (expired, or never planned)")
        return RunRecord.from_json(rec.data)

    def save_run(self, run: RunRecord) -> None:
        self.store.put(self._pk(run.run_id), RUN_SK, run.to_json(), expires_at=self._expires())

    def unit_records(self, run_id: str, phase: str) -> list[UnitRecord]:
        prefix = f"{UNIT_SK_PREFIX}{phase}#"
        return [UnitRecord.from_json(r.data) for r in self.store.query(self._pk(run_id), prefix)]

    def _unit_sk(self, phase: str, uid: str) -> str:
        return f"{UNIT_SK_PREFIX}{phase}#{uid}"

    def units_of(self, run: RunRecord, phase: str) -> list[Unit]:
        routes = run.routes if phase == DIGEST else run.exact_routes
        specs = [s for s in self.resolve(run.routes) if s.name in routes]
        return plan_units(specs, run.segments)

    # --- steps --------------------------------------------------------------------------
    def begin(
        self,
        *,
        execution: str,
        is_running: sfn_lock.IsRunning,
        route: str | None = None,
        total_segments: int | None = None,
        settle_s: float = 1.0,
    ) -> JsonObject:
        if tables.describe(self.clients.dynamodb, self.migration.control_table) is None:
            raise ConfigError(
                f"control table {self.migration.control_table} does not exist: "
                "run `dualwrite prepare`"
            )
        specs = self.resolve([route] if route else None)
        run_id = uuid.uuid4().hex[:12]
        running = sfn_lock.acquire(self.store, execution, run_id, is_running)
        if running is not None:
            return {"skip": True, "running": running}
        current = sfn_lock.holder(self.store)
        if current is not None and current.run_id != run_id:
            run_id = current.run_id  # a retried begin: keep the run it planned
        table_count = len({s.source for s in specs} | {s.target for s in specs})
        largest = max(
            [s.approx_source_items for s in specs] + [s.approx_target_items for s in specs]
        )
        segments = total_segments or default_segments(largest, table_count)
        units = plan_units(specs, segments)
        run = RunRecord(
            run_id=run_id,
            execution=execution,
            routes=tuple(s.name for s in specs),
            segments=segments,
            units=len(units),
            settle_s=settle_s,
            buckets=DEFAULT_BUCKETS,
            started_at=self.store.now(),
        )
        self.save_run(run)
        return {"skip": False, "run_id": run_id, "phase": DIGEST, "units": list(range(len(units)))}

    def run_unit(
        self,
        run_id: str,
        phase: str,
        index: int,
        *,
        should_stop: Callable[[], bool],
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> JsonObject:
        if phase not in PHASES:
            raise ConfigError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
        run = self.load_run(run_id)
        units = self.units_of(run, phase)
        if not 0 <= index < len(units):
            raise ConfigError(f"unit {index} is not within 0..{len(units) - 1} ({phase})")
        unit = units[index]
        sk = self._unit_sk(phase, unit.uid)
        rec = self.store.get(self._pk(run_id), sk)
        before = UnitRecord.from_json(rec.data) if rec else None
        state = UnitState.from_json(before.state.to_json()) if before else UnitState()
        checker = Checker(
            self.clients.shared(),
            {s.name: s for s in self.resolve(run.routes)},
            page_size=page_size,
            settle_s=run.settle_s,
            digest=phase == DIGEST,
            only=None if phase == DIGEST else {r: frozenset(b) for r, b in run.open.items()},
            buckets=run.buckets,
        )
        outcome = checker.run(unit, state, should_stop)
        found = outcome.differences
        samples = [{**d.sample().to_json(), "route": d.route} for d in found]
        now = self.store.now()
        judged = [Judgement(d.route, key_id(d.target_key), d.kind, now) for d in found]
        after = advanced(before, phase, unit.uid, state, outcome.digests, samples, judged)
        self.store.put(self._pk(run_id), sk, after.to_json(), expires_at=self._expires())
        return {
            "done": after.done,
            "unit": unit.uid,
            "requests": dict(sorted(_counts(outcome.requests).items())),
        }

    def combine(self, run_id: str) -> JsonObject:
        run = self.load_run(run_id)
        records = self.unit_records(run_id, DIGEST)
        left = missing_units([u.uid for u in self.units_of(run, DIGEST)], records)
        if left:
            raise ConfigError(f"reconcile run {run_id}: {len(left)} unit(s) not done: {left[:3]}")
        combined = combine(run.routes, records, run.buckets)
        run = replace(run, tallies=combined.tallies, open=combined.open, combined=True)
        self.save_run(run)
        exact = self.units_of(run, EXACT)
        return {
            "run_id": run_id,
            "phase": EXACT,
            "exact": bool(exact),
            "units": list(range(len(exact))),
            "exact_buckets": {r: len(b) for r, b in combined.open.items()},
        }

    def finish(self, run_id: str, execution: str) -> list[ReconcileRecord]:
        """Each route's result, saved as `dualwrite reconcile` saves it; releases the lock."""
        run = self.load_run(run_id)
        if not run.combined:
            raise ConfigError(f"reconcile run {run_id} was not combined")
        records = self.unit_records(run_id, EXACT) if run.exact_routes else []
        left = missing_units([u.uid for u in self.units_of(run, EXACT)], records)
        if left:
            raise ConfigError(f"reconcile run {run_id}: {len(left)} unit(s) not done: {left[:3]}")
        found = found_by_route(run.routes, records)
        results = []
        for spec in self.resolve(run.routes):
            result = check_result(
                spec,
                run.tallies[spec.name],
                found[spec.name].counts,
                found[spec.name].samples,
                mode="state-machine",
                method="digest",
                exact_buckets=len(run.open.get(spec.name, ())),
                run_id=run.run_id,
                segments=run.segments,
                started_at=run.started_at,
                quarantine_resolved=0,
            )
            results.append(self.store.save_reconcile(result))
        sfn_lock.release(self.store, execution)
        return results

    def abandon(self, execution: str) -> bool:
        """After a failure: release the lock (the next schedule starts afresh)."""
        return sfn_lock.release(self.store, execution)


def _counts(counter: RequestCounter) -> dict[str, int]:
    return dict(counter.counts)


def deadline_after(
    seconds: float, clock: Callable[[], float] = time.monotonic
) -> Callable[[], bool]:
    end = clock() + max(0.0, seconds)
    return lambda: clock() >= end
