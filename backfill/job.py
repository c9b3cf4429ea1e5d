"""The local backfill job: every route's segments on a bounded pool of worker threads.

    run_backfill(migration, clients, store, *, routes=None, segments=None, workers=None,
                 max_wcu=None, restart=False, on_progress=None, stop=None) -> BackfillResult

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

Returns a BackfillResult (backfill.results; `.to_json()` is what `backfill --json` prints).
items_read and items_written count this run; items_written counts target items put
(derived User items included). Raises ConfigError (exit 2) before writing anything when a
route cannot be backfilled (unknown route, prepare not run). The phases a route goes through
are backfill.lifecycle's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from backfill.event_sources import enable_mappings
from backfill.lifecycle import (
    RoutePlan,
    Warn,
    checkpointed_total,
    complete_route,
    plan_route,
    stderr_warning,
)
from backfill.results import BackfillResult, RouteTally
from backfill.route import (
    SCAN_LIMIT,
    ProgressCallback,
    RouteJob,
    check_control_table,
    check_route,
    cognito_names,
)
from backfill.segment import SegmentOutcome, copy_segment
from backfill.sizing import DEFAULT_WORKERS, default_workers
from dualwrite.aws.clients import Clients
from dualwrite.backoff import Backoff, RateLimiter
from dualwrite.config import Migration
from dualwrite.control import ControlStore
from dualwrite.coordinator import BoundedPool
from dualwrite.errors import ConfigError, DualwriteError

__all__ = ["complete_route", "plan_route", "run_backfill", "stderr_warning"]


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
) -> BackfillResult:
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
            checkpointed_total(spec.name, store.segments(spec.name), segments)
    limiter = rate_limiter or (RateLimiter(max_wcu) if max_wcu else None)
    names_source = cognito_names(clients, migration)
    if names_source is not None and any(s.mapping.group_attr for s in specs):
        names_source.check()  # before a --restart clears anything
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
                tally.outcome = replace(
                    tally.outcome, event_source_mappings=enable_mappings(clients.lambda_, arn)
                )
            except DualwriteError as exc:
                # the copy is complete; only enabling the replicator's mappings failed
                tally.outcome = replace(tally.outcome, event_source_error=str(exc))
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
    return BackfillResult(
        tuple(tallies[p.name].result() for p in plans),
        round(time.monotonic() - started, 3),
    )


def _run_tasks(
    tasks: list[tuple[RoutePlan, int]],
    jobs: dict[str, RouteJob],
    tallies: dict[str, RouteTally],
    finish: Callable[[RouteTally], None],
    workers: int,
    stop: threading.Event | None,
    warm: Callable[[], None],
) -> None:
    """Copy the segments on the pool; a route is finished (on this thread) once its last
    segment is. The first failure stops the others after their current page, checkpointed."""
    remaining: dict[str, int] = {}
    for plan, _ in tasks:
        remaining[plan.name] = remaining.get(plan.name, 0) + 1
    with BoundedPool[SegmentOutcome](
        workers, name="backfill", stop=stop.is_set if stop is not None else None
    ) as pool:
        for job in jobs.values():
            if job.limiter is not None:  # a stop does not wait out the budget
                job.limiter.stopping = lambda: pool.stopping
        for plan, segment in tasks:
            job = jobs[plan.name]
            pool.submit(partial(copy_segment, job, segment, plan.total, stop=lambda: pool.stopping))
        if not pool.inline:
            warm()
        for future in pool.as_completed():
            if future.exception() is not None or future.cancelled():
                continue
            outcome = future.result()
            tally = tallies[outcome.route]
            tally.add(outcome)
            remaining[outcome.route] -= 1
            if remaining[outcome.route] == 0 and tally.complete:
                finish(tally)
    if pool.failure is not None:
        raise pool.failure
