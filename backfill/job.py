"""The local backfill job: every route's segments on a bounded pool of worker threads.

    run_backfill(migration, clients, store, *, routes=None, segments=None, workers=None,
                 max_wcu=None, restart=False, on_progress=None, stop=None) -> dict

- routes: route names (None: every route of the migration).
- segments: scan segments per route (None: from the table's size, see backfill.sizing; a
  route with checkpoints resumes with the segment count they were made with).
- workers: worker threads, each with its own boto3 clients (None: one per segment, <= 8).
- max_wcu: write capacity units per second for the whole job, measured from ConsumedCapacity
  (shared by every worker; None: no budget).
- restart: clear the routes' checkpoints and start over (default: resume from them).
- on_progress(route, items, approx_total): called once per route before copying with the
  items its checkpoints already cover, then after every page with the items read (from
  worker threads); approx_total is DescribeTable ItemCount, which is approximate.
- stop: a threading.Event; once set, workers stop after their current page (checkpointed)
  and the routes stay incomplete.
Keyword extras: warn(message) for loud warnings (default: stderr), enable_event_sources
(enable the replicator's event source mappings of a completed route), require_stream (False
only for engines without streams, e.g. the dynalite benchmark), backoff, rate_limiter
(injectable for tests), scan_limit.

Returns {"routes": [{"route", "items_read", "items_written", "quarantined", "segments",
"segments_resumed", "skipped_existing", "deleted", "write_requests", "consumed_wcu",
"mode", "complete", "phase", "needs_repair", "event_source_mappings", ...}], "duration_s"}.
items_read and items_written count this run; items_written counts target items put
(derived User items included). Raises ConfigError (exit 2) before writing anything when a
route cannot be backfilled (unknown route, prepare not run).

Phases: a route goes PENDING -> BACKFILLING (backfill_started_at) -> BACKFILLED
(backfill_completed_at, needs_repair, repair_reason) once every segment is done; the
replicator applies a route only from BACKFILLED on. A route already BACKFILLED is copied
again only with put-if-absent writes (see backfill.writer) and stays BACKFILLED.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from backfill.checkpoint import SegmentState
from backfill.event_sources import enable_mappings
from backfill.retention import backfill_started_at, retention_problem, stream_created_at
from backfill.route import (
    SCAN_LIMIT,
    ProgressCallback,
    RouteJob,
    RouteSpec,
    check_control_table,
    check_route,
    cognito_names,
)
from backfill.segment import SegmentOutcome, copy_segment
from backfill.sizing import DEFAULT_WORKERS, default_segments, default_workers
from dualwrite.aws.clients import Clients
from dualwrite.backoff import Backoff, RateLimiter
from dualwrite.config import Migration
from dualwrite.control import ControlStore, Phase
from dualwrite.errors import BackfillIncompleteError, ConfigError, DualwriteError

Warn = Callable[[str], None]


def stderr_warning(message: str) -> None:
    sys.stderr.write(f"WARNING: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class RoutePlan:
    spec: RouteSpec
    total: int
    conditional: bool
    checkpoints: dict[int, SegmentState]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def todo(self) -> list[int]:
        return [
            i for i in range(self.total) if not (i in self.checkpoints and self.checkpoints[i].done)
        ]

    @property
    def already_read(self) -> int:
        return sum(cp.items_read for cp in self.checkpoints.values())


def load_checkpoints(store: ControlStore, route: str) -> list[SegmentState]:
    return [SegmentState.from_data(rec.data) for rec in store.segments(route)]


def checkpointed_total(
    route: str, checkpoints: list[SegmentState], segments: int | None
) -> int | None:
    """The segment count of a route's checkpoints (None: none), refusing another count."""
    totals = sorted({cp.total for cp in checkpoints})
    if len(totals) > 1:
        raise ConfigError(
            f"route {route} has checkpoints for {' and '.join(map(str, totals))} segments: "
            "run the backfill with --restart"
        )
    if totals and segments is not None and segments != totals[0]:
        raise ConfigError(
            f"route {route} has checkpoints of a backfill with {totals[0]} segments: pass "
            f"--segments {totals[0]} to resume it, or --restart to start over"
        )
    return totals[0] if totals else None


def plan_route(
    store: ControlStore,
    spec: RouteSpec,
    *,
    segments: int | None = None,
    restart: bool = False,
    warn: Warn = stderr_warning,
    workers: int = DEFAULT_WORKERS,
) -> RoutePlan:
    """Settle a route's segment count and mode, and mark it BACKFILLING (unless it is
    BACKFILLED already: then the copy is a put-if-absent re-run)."""
    name = spec.name
    phase = store.phase(name)
    conditional = phase.get("phase") == Phase.BACKFILLED
    if restart:
        store.clear_segments(name)
    checkpoints = load_checkpoints(store, name)
    total = (
        checkpointed_total(name, checkpoints, segments)
        or segments
        or default_segments(spec.approx_items, spec.size_bytes, workers)
    )
    now = store.now()
    if not conditional:
        if (
            restart
            or phase.get("phase") != Phase.BACKFILLING
            or not phase.get("backfill_started_at")
        ):
            phase = store.set_phase(
                name,
                Phase.BACKFILLING,
                backfill_started_at=now,
                backfill_completed_at=None,
                needs_repair=False,
                repair_reason=None,
                total_segments=total,
            )
        problem = retention_problem(
            backfill_started_at(phase, checkpoints), now, stream_created_at(spec.stream_label)
        )
        if problem:
            warn(f"route {name}: {problem}. It will be marked as needing a repair pass.")
    return RoutePlan(spec, total, conditional, {cp.segment: cp for cp in checkpoints})


def complete_route(
    store: ControlStore,
    spec: RouteSpec,
    total: int,
    *,
    lambda_client: Any | None = None,
    warn: Warn = stderr_warning,
    record: bool = True,
) -> dict[str, Any]:
    """Mark a route BACKFILLED once every segment is done (else BackfillIncompleteError),
    with the retention guard, then enable its event source mappings (lambda_client given)."""
    name = spec.name
    checkpoints = [cp for cp in load_checkpoints(store, name) if cp.total == total]
    done = {cp.segment for cp in checkpoints if cp.done}
    missing = [i for i in range(total) if i not in done]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise BackfillIncompleteError(
            f"route {name}: {len(missing)} of {total} segment(s) not done yet ({shown})"
        )
    phase = store.phase(name)
    now = store.now()
    if phase.get("phase") == Phase.BACKFILLED:
        if record:  # a put-if-absent re-run: the route stays as the replicator knows it
            phase = {**phase, "rerun_completed_at": now}
            store.put(f"ROUTE#{name}", "PHASE", phase)
    else:
        problem = retention_problem(
            backfill_started_at(phase, checkpoints), now, stream_created_at(spec.stream_label)
        )
        extra: dict[str, Any] = {
            "backfill_completed_at": now,
            "needs_repair": problem is not None,
            "total_segments": total,
        }
        if problem:
            extra["repair_reason"] = problem
            warn(
                f"route {name}: {problem}. The route is marked as needing a repair pass: run "
                f"`dualwrite reconcile --route {name} --repair` once replication has caught up."
            )
        phase = store.set_phase(name, Phase.BACKFILLED, **extra)
    result: dict[str, Any] = {
        "route": name,
        "phase": phase["phase"],
        "needs_repair": bool(phase.get("needs_repair")),
        "event_source_mappings": [],
    }
    if phase.get("repair_reason"):
        result["repair_reason"] = phase["repair_reason"]
    if lambda_client is not None and spec.stream_arn:
        result["event_source_mappings"] = enable_mappings(lambda_client, spec.stream_arn)
    return result


@dataclass
class RouteTally:
    plan: RoutePlan
    items_read: int = 0
    items_written: int = 0
    quarantined: int = 0
    skipped_existing: int = 0
    deleted: int = 0
    write_requests: int = 0
    consumed_wcu: float = 0.0
    resumed: int = 0
    finished: int = 0
    outcome: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0

    def add(self, o: SegmentOutcome) -> None:
        self.items_read += o.items_read
        self.items_written += o.items_written
        self.quarantined += o.quarantined
        self.skipped_existing += o.skipped_existing
        self.deleted += o.deleted
        self.write_requests += o.write_requests
        self.consumed_wcu += o.consumed_wcu
        self.resumed += int(o.resumed)
        self.finished += int(o.done)

    @property
    def complete(self) -> bool:
        return self.finished == len(self.plan.todo)

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "route": plan.name,
            "source": plan.spec.route.source,
            "target": plan.spec.route.target,
            "mode": "put-if-absent" if plan.conditional else "batch",
            "items_read": self.items_read,
            "items_written": self.items_written,
            "quarantined": self.quarantined,
            "skipped_existing": self.skipped_existing,
            "deleted": self.deleted,
            "segments": plan.total,
            "segments_resumed": self.resumed + (plan.total - len(plan.todo)),
            "write_requests": self.write_requests,
            "consumed_wcu": round(self.consumed_wcu, 1),
            "approx_items": plan.spec.approx_items,
            "complete": self.complete and bool(self.outcome),
            "phase": self.outcome.get("phase", Phase.BACKFILLING),
            "needs_repair": bool(self.outcome.get("needs_repair", False)),
            "event_source_mappings": self.outcome.get("event_source_mappings", []),
            **{
                k: self.outcome[k]
                for k in ("repair_reason", "event_source_error")
                if k in self.outcome
            },
            "duration_s": round(self.duration_s, 3),
        }


def run_backfill(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    *,
    routes: Sequence[str] | None = None,
    segments: int | None = None,
    workers: int | None = None,
    max_wcu: float | None = None,
    restart: bool = False,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    warn: Warn | None = None,
    enable_event_sources: bool = True,
    require_stream: bool = True,
    backoff: Backoff | None = None,
    rate_limiter: RateLimiter | None = None,
    scan_limit: int = SCAN_LIMIT,
) -> dict[str, Any]:
    """Backfill the routes; see the module docstring for the arguments and the result."""
    started = time.monotonic()
    say = warn or stderr_warning
    if segments is not None and segments < 1:
        raise ConfigError("--segments must be at least 1")
    if workers is not None and workers < 1:
        raise ConfigError("--workers must be at least 1")
    if max_wcu is not None and max_wcu <= 0:
        raise ConfigError("--max-wcu must be more than 0")
    names = [r.name for r in migration.routes] if routes is None else list(routes)
    for name in names:
        migration.route(name)  # an unknown route is a ConfigError before anything else
    check_control_table(clients, migration)
    specs = [check_route(clients, migration, n, require_stream=require_stream) for n in names]
    if not restart:  # refuse a segment count that does not fit, before writing anything
        for spec in specs:
            checkpointed_total(spec.name, load_checkpoints(store, spec.name), segments)
    limiter = rate_limiter or (RateLimiter(max_wcu) if max_wcu else None)
    names_source = cognito_names(clients, migration)
    plans = [
        plan_route(
            store,
            spec,
            segments=segments,
            restart=restart,
            warn=say,
            workers=workers or DEFAULT_WORKERS,
        )
        for spec in specs
    ]
    tallies: dict[str, RouteTally] = {}
    jobs: dict[str, RouteJob] = {}
    for plan in plans:
        job = RouteJob(
            plan.spec,
            clients,
            store,
            conditional=plan.conditional,
            limiter=limiter,
            backoff=backoff or Backoff(),
            names=names_source,
            on_progress=on_progress,
            scan_limit=scan_limit,
        )
        job.load_quarantined()
        jobs[plan.name] = job
        tallies[plan.name] = RouteTally(plan)
        if on_progress is not None:
            on_progress(plan.name, plan.already_read, plan.spec.approx_items)

    def finish(tally: RouteTally) -> None:
        plan = tally.plan
        tally.outcome = complete_route(
            store, plan.spec, plan.total, warn=say, record=bool(plan.todo) or not plan.conditional
        )
        arn = plan.spec.stream_arn
        if enable_event_sources and arn:
            try:
                tally.outcome["event_source_mappings"] = enable_mappings(clients.lambda_, arn)
            except DualwriteError as exc:
                # the copy is complete; only enabling the replicator's mappings failed
                tally.outcome["event_source_error"] = str(exc)
                say(
                    f"route {plan.name}: could not enable the event source mappings of {arn}: "
                    f"{exc}. Enable them by hand so that replication starts."
                )
        tally.duration_s = time.monotonic() - tally.started

    tasks = [(plan, i) for plan in plans for i in plan.todo]
    for plan in plans:
        if not plan.todo:
            finish(tallies[plan.name])

    def warm() -> None:
        # the main thread only waits while the workers copy: make its Lambda client (loading
        # the service model takes a while) now rather than after the last segment
        if enable_event_sources and any(p.spec.stream_arn for p in plans):
            with contextlib.suppress(Exception):  # finish() reports a real problem
                _ = clients.lambda_

    if tasks:
        _run_tasks(tasks, jobs, tallies, finish, workers or default_workers(len(tasks)), stop, warm)
    for tally in tallies.values():
        tally.duration_s = tally.duration_s or time.monotonic() - tally.started
    return {
        "routes": [tallies[p.name].to_json() for p in plans],
        "duration_s": round(time.monotonic() - started, 3),
    }


def _run_tasks(
    tasks: list[tuple[RoutePlan, int]],
    jobs: dict[str, RouteJob],
    tallies: dict[str, RouteTally],
    finish: Callable[[RouteTally], None],
    workers: int,
    stop: threading.Event | None,
    warm: Callable[[], None],
) -> None:
    halt = threading.Event()

    def stopped() -> bool:
        return halt.is_set() or (stop is not None and stop.is_set())

    def record(name: str, outcome: SegmentOutcome) -> None:
        tally = tallies[name]
        tally.add(outcome)
        remaining[name] -= 1
        if remaining[name] == 0 and tally.complete:
            finish(tally)

    remaining: dict[str, int] = {}
    for plan, _ in tasks:
        remaining[plan.name] = remaining.get(plan.name, 0) + 1
    if workers == 1:
        # one worker: the calling thread, whose client already exists, copies in turn
        for plan, segment in tasks:
            record(plan.name, copy_segment(jobs[plan.name], segment, plan.total, stop=stopped))
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill")
    futures: dict[Future[SegmentOutcome], str] = {}
    for plan, segment in tasks:
        future = pool.submit(copy_segment, jobs[plan.name], segment, plan.total, stop=stopped)
        futures[future] = plan.name
    errors: list[BaseException] = []
    try:
        warm()
        for future in as_completed(futures):
            name = futures[future]
            if future.cancelled():
                continue
            exc = future.exception()
            if exc is not None:
                # the others stop after their current page, checkpointed
                errors.append(exc)
                halt.set()
                for other in futures:
                    other.cancel()
                continue
            record(name, future.result())
    except BaseException:
        # Ctrl-C: let the workers checkpoint their current page, then stop
        halt.set()
        for other in futures:
            other.cancel()
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)
    if errors:
        raise errors[0]
