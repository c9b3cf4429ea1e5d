"""The local stream runner: DynamoDB Streams semantics for the replicator outside AWS.

It does what Lambda's DynamoDB event source mapping does for the Lambda handler: lists every
shard of each route's stream (paginated DescribeStream), reads a parent shard to its end before
its children, starts at the trim horizon or just after the per-shard checkpoint in the control
table, renews expired iterators, builds events exactly as Lambda does, hands batches to the
same inner function the Lambda calls (batch.process_records), honours batchItemFailures by
reading again from the lowest failed sequence number, and checkpoints only what succeeded.

It follows each route's direction (DESIGN.md section 8): besides the source streams it reads
the target stream of every route that has switched, and marks a switch's drain once the old
direction's stream has been read to its end past T+O (runner_streams).

The parts: StreamSet (which streams, phases, directions, drains), ShardReader (the Streams
calls), ShardCursor (where a shard stands; pure), Checkpointer (the control table),
MetricsPublisher (PutMetricData); this module is the loop.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from dualwrite.aws.clients import Clients
from dualwrite.config import Migration
from dualwrite.control import ControlStore, iso
from dualwrite.errors import DualwriteError, SafetyGateError
from dualwrite.reverse.direction import Flow
from stream_replicator import lease
from stream_replicator.apply import Replicator
from stream_replicator.batch import process_records
from stream_replicator.checkpointer import Checkpointer
from stream_replicator.cursor import Batch, ShardCursor, Step
from stream_replicator.metrics_publisher import MetricsPublisher
from stream_replicator.records import sequence_order
from stream_replicator.results import Mark, first_failure
from stream_replicator.run_summary import RunSummary, RunTally
from stream_replicator.runner_settings import Clock, RunnerSettings
from stream_replicator.runner_streams import StreamSet
from stream_replicator.shard_reader import ReadProblem, ShardReader

#: how long a switch may be under way (its functions re-pointed; a cutover's checks come on
#: top) before replicate --until-caught-up takes it for one stopped midway
UNFINISHED_SWITCH_S = 30.0


class StreamRunner:
    """Runs the replicator over the routes' DynamoDB Streams (used by `dualwrite replicate`,
    by the demo and by tests, in-process).

        runner = StreamRunner(migration, clients, store, RunnerSettings(batch_size=100))
        summary = runner.run(until_caught_up=True)   # a RunSummary

    run(until_caught_up=False, duration=None, stop=None, on_progress=None):
    - until_caught_up: return once every shard of every stream read is drained (closed and
      read, or read up to its tip) in the direction that is live, and no switch still owes a
      drain this run can see. A route whose backfill is not complete is not read at all: it
      is named in "held_routes" (and to `notify`), its records stay in the stream.
    - duration: return after that many seconds.
    - stop: a threading.Event; setting it stops cleanly: the batch in hand is finished and
      checkpointed first.
    - on_progress: called with the running summary after each batch.
    Without until_caught_up, duration or stop it runs until interrupted, re-reading the phase
    of held routes and every route's direction every `phase_interval` seconds, picking up a
    backfill or a switch without a restart.

    Counts (RunSummary): a record counts once, when its outcome is final (results.settle).
    Shard checkpoints (ControlStore.save_shard) hold lag_ms of the newest applied record, 0
    once the shard has nothing more to read, and caught_up_at.

    Metrics are published per route with PutMetricData (never EMF on stdout) every
    `metrics_interval` seconds and at the end.

    replicator, streams and cloudwatch replace the ones made from `clients` (tests inject
    faults); clock gives the time (the cursors never read it themselves).
    """

    def __init__(
        self,
        migration: Migration,
        clients: Clients,
        store: ControlStore,
        settings: RunnerSettings | None = None,
        *,
        replicator: Replicator | None = None,
        streams: Any = None,
        cloudwatch: Any = None,
        clock: Clock | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.migration = migration
        self.store = store
        self.settings = settings or RunnerSettings()
        self.rules = self.settings.rules()
        self.clock = clock or Clock()
        self.replicator = replicator or Replicator(
            migration,
            clients,
            store,
            clock=self.clock.wall,
            monotonic=self.clock.mono,
            phase_ttl=self.settings.phase_interval,
        )
        # this runner sees the shards: it marks drains exactly, never by the clock
        self.replicator.drain_by_time = False
        self.notify = notify or (lambda _message: None)
        self._streams_client = streams
        self._clients = clients
        self.checkpointer = Checkpointer(store)
        self.publisher = MetricsPublisher(
            lambda: cloudwatch if cloudwatch is not None else clients.cloudwatch,
            migration.metrics_namespace,
            self.notify,
        )
        self.reading = StreamSet(
            migration,
            store,
            self.replicator,
            lambda: self.streams,
            self.checkpointer,
            self.rules,
            self.settings.phase_interval,
            self.notify,
        )
        self.tally = RunTally()
        self.reading.trimmed = self.tally.trimmed  # one list: the summary's trimmed_shards
        self._started = 0.0
        #: who this runner is in the control table's lease (one runner at a time)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: when (wall clock, as other runners judge it) the lease was last taken or renewed
        self._renewed_at = 0.0
        self._lease_lost = False

    @property
    def streams(self) -> Any:
        return self._streams_client if self._streams_client is not None else self._clients.streams

    # --- the loop -----------------------------------------------------------------------
    def run(
        self,
        until_caught_up: bool = False,
        duration: float | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[RunSummary], None] | None = None,
    ) -> RunSummary:
        stop = stop or threading.Event()
        self._started = self.clock.mono()
        deadline = self._started + duration if duration is not None else None
        self.reading.discover()
        if not self._take_lease(stop, deadline):
            return self.summary()
        try:
            return self._loop(until_caught_up, deadline, stop, on_progress)
        finally:
            lease.release(self.store, self.owner)

    def _take_lease(self, stop: threading.Event, deadline: float | None) -> bool:
        """Wait for the lease; False when stopped (or out of time) first."""
        announced = False
        host = socket.gethostname()
        while True:
            now = self.clock.wall()
            held = lease.acquire(self.store, self.owner, now, lambda o: lease.process_gone(o, host))
            if held is None:
                self._renewed_at = now
                return True
            if not announced:
                self.notify(
                    f"another `dualwrite replicate` ({held.owner}) is replicating the streams "
                    f"of control table {self.store.table}; waiting for it to stop (a lease it "
                    f"does not renew for {lease.TTL_S:.0f} s lapses)"
                )
                announced = True
            if stop.is_set() or (deadline is not None and self.clock.mono() >= deadline):
                return False
            stop.wait(self.settings.poll_interval)

    def _keep_lease(self) -> None:
        """Renew the lease when a third of its TTL has passed on the wall clock, the one the
        other runners judge it by (a laptop's sleep stops the monotonic one), before each
        batch: a runner whose lease passed on while it stalled applies no batch more."""
        if self.clock.wall() - self._renewed_at >= lease.TTL_S / 3:
            self._renew_lease()

    def _renew_lease(self) -> None:
        now = self.clock.wall()
        held = lease.acquire(self.store, self.owner, now)
        if held is None:
            self._renewed_at = now
            return
        # this runner stalled past the TTL and another took over: it stops, and saves no
        # checkpoint over the new holder's
        self._lease_lost = True
        raise DualwriteError(
            f"the replication lease passed to {held.owner} (this runner did not renew it "
            f"for {lease.TTL_S:.0f} s): stopping, so that one runner applies the streams"
        )

    def _refuse_unfinished_switch(self) -> None:
        """--until-caught-up cannot be met while a switch of direction begun a while ago
        is not saved (a rollback or cutover stopped midway): the changes it orders are held
        for it, and only a re-run of that command makes it. Said, rather than waited for."""
        now = self.clock.wall()
        # a cutover's switch is under way while its checks run (the watch); a rollback's
        # only while it puts the functions back
        watch = float(self.migration.cutover.watch_seconds)
        for route, state in self.reading.directions.items():
            if state.next_at is None:
                continue
            bound = UNFINISHED_SWITCH_S + (watch if state.direction is Flow.FORWARD else 0.0)
            if now - state.next_at >= bound:
                raise SafetyGateError(
                    f"route {route}: the switch of direction begun at {iso(state.next_at)} is "
                    "not finished, and the changes it orders wait for it: if no rollback (or "
                    "cutover) is running, run `dualwrite rollback` again to finish it, then "
                    "replicate --until-caught-up"
                )

    def _loop(
        self,
        until_caught_up: bool,
        deadline: float | None,
        stop: threading.Event,
        on_progress: Callable[[RunSummary], None] | None,
    ) -> RunSummary:
        s = self.settings
        mono = self.clock.mono
        self.reading.check(announce_waiting=not until_caught_up)
        next_phase = self._started + s.phase_interval
        next_refresh = self._started + s.shard_refresh_interval
        next_metrics = self._started + s.metrics_interval
        caught_up = False
        try:
            while not stop.is_set():
                now = mono()
                if deadline is not None and now >= deadline:
                    break
                self._keep_lease()
                if now >= next_phase:
                    self.reading.check(announce_waiting=False)
                    next_phase = now + s.phase_interval
                    if until_caught_up:
                        self._refuse_unfinished_switch()
                if now >= next_refresh:
                    self.reading.refresh_active()
                    next_refresh = now + s.shard_refresh_interval
                got = 0
                for cursor in self.reading.ready():
                    if stop.is_set() or (deadline is not None and mono() >= deadline):
                        break
                    if cursor.waiting(mono()):
                        continue
                    self._keep_lease()
                    n = self._poll(cursor, may_give_up=until_caught_up)
                    got += n
                    if cursor.done:
                        self.reading.refresh(self.reading.streams[cursor.route])
                    if n and on_progress is not None:
                        on_progress(self.summary())
                self.reading.settle_drains()
                if s.publish_metrics and mono() >= next_metrics:
                    self.publisher.publish(self.tally.counts)
                    next_metrics = mono() + s.metrics_interval
                if until_caught_up and self._all_caught_up():
                    # a split may just have added shards: look once more before leaving
                    self.reading.refresh_active()
                    if self._all_caught_up():
                        # nothing more to read; a stuck shard (and what is behind it) is
                        # not caught up, though this run can do no more for it
                        caught_up = not self.reading.stuck()
                        break
                if got:
                    continue
                wait = self._wait(until_caught_up, deadline)
                if wait > 0:
                    stop.wait(wait)
        finally:
            if not self._lease_lost:
                self._flush(force=True)
            if s.publish_metrics:
                self.publisher.publish(self.tally.counts)
        return self.summary(caught_up=caught_up)

    def _wait(self, until_caught_up: bool, deadline: float | None) -> float:
        now = self.clock.mono()
        ready = self.reading.ready()
        wait = self.settings.poll_interval
        if until_caught_up and any(not c.idle(self.rules) and not c.waiting(now) for c in ready):
            wait = 0.0
        retries = [c.retry_at for c in ready if c.waiting(now)]
        if retries:
            wait = min(wait, max(0.0, min(retries) - now))
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - now))
        return wait

    # --- summary ------------------------------------------------------------------------
    def summary(self, *, caught_up: bool = False) -> RunSummary:
        return self.tally.summary(
            self.migration,
            {name: list(st.cursors.values()) for name, st in self.reading.streams.items()},
            self.reading.held,
            self.reading.directions,
            self.reading.drained,
            duration_s=self.clock.mono() - self._started,
            caught_up=caught_up,
        )

    def _all_caught_up(self) -> bool:
        """Caught up in the direction that is live: every shard idle, no drain owed."""
        idle = all(c.idle(self.rules) for c in self.reading.ready())
        return idle and not self.reading.drain_pending() and not self.reading.unreached()

    # --- one shard ----------------------------------------------------------------------
    def _apply(self, cursor: ShardCursor, step: Step) -> None:
        if step.save:
            self.checkpointer.save(cursor, self.clock.now())

    def _start(self, cursor: ShardCursor, reader: ShardReader) -> bool:
        """Take an iterator just after the checkpoint; False when the shard is finished."""
        start = reader.start(cursor.shard_id, cursor.sequence_number)
        if start.slow:  # throttled or a 5xx: an iterator later, with backoff
            cursor.throttled(self.clock.now(), self.settings.retry_backoff.delay)
            return False
        if start.trimmed:
            self.tally.trimmed.append(f"{cursor.route}:{cursor.shard_id}")
            self.notify(
                f"route {cursor.route}: shard {cursor.shard_id} was trimmed past its "
                "checkpoint (records older than 24 h are gone); continuing from the trim "
                "horizon. Run `dualwrite reconcile --repair` for this route"
            )
        if start.gone:  # expired between the listing and now: its unread records with it
            self.tally.trimmed.append(f"{cursor.route}:{cursor.shard_id}")
            self.notify(
                f"route {cursor.route}: shard {cursor.shard_id} no longer exists (records "
                "older than 24 h are gone, unread ones with them). Run `dualwrite reconcile "
                "--repair` for this route"
            )
        self._apply(cursor, cursor.started(start.iterator))
        return start.iterator is not None

    def _poll(self, cursor: ShardCursor, *, may_give_up: bool) -> int:
        """One GetRecords on a shard and, when it returned records, one batch. Returns the
        number of records checkpointed. With may_give_up (--until-caught-up), a shard whose
        batch failed max_retries times in a row is left alone for the rest of the run."""
        reader = self.reading.streams[cursor.route].reader
        if cursor.iterator is None and not self._start(cursor, reader):
            return 0
        assert cursor.iterator is not None
        read = reader.read(cursor.iterator, self.settings.batch_size)
        if read.problem is ReadProblem.RENEW:
            self.tally.renewed += 1
            cursor.renew()
            return 0
        if read.problem is ReadProblem.SLOW_DOWN:
            cursor.throttled(self.clock.now(), self.settings.retry_backoff.delay)
            return 0
        if not read.records:
            self._apply(cursor, cursor.empty(read.next_iterator, self.clock.now(), self.rules))
            return 0
        events = read.records
        processed = process_records(self.replicator, events)
        failures = processed.failures
        cut = first_failure([e["dynamodb"]["SequenceNumber"] for e in events], failures)
        last = events[cut - 1]["dynamodb"] if cut else None
        created = last.get("ApproximateCreationDateTime") if last is not None else None
        # records waiting for a drain are not a failure: read them again each poll interval,
        # and never give the shard up for them
        marks = dict(zip(processed.result.sequence_numbers, processed.result.marks, strict=True))
        held = sum(1 for f in failures if marks.get(f) is Mark.WAITING)
        waiting = bool(failures) and held == len(failures)
        batch = Batch(
            settled=cut,
            last_sequence_number=str(last["SequenceNumber"]) if last is not None else None,
            last_created_at=float(created) if isinstance(created, int | float) else None,
            lowest_failure=min(failures, key=sequence_order) if failures else None,
            next_iterator=read.next_iterator,
        )
        step = cursor.batch(
            batch,
            self.clock.now(),
            self.rules,
            (lambda _n: self.settings.poll_interval)
            if waiting
            else self.settings.retry_backoff.delay,
            may_give_up=may_give_up and not waiting,
        )
        if waiting:
            cursor.failures_in_row = 0
        self.tally.add_batch(processed.settled(), len(failures) - held, step.lag_ms)
        if step.gave_up:
            self.notify(
                f"route {cursor.route}: shard {cursor.shard_id} keeps failing at sequence "
                f"number {batch.lowest_failure} after {cursor.failures_in_row} attempts; giving "
                "up on it for this run (its checkpoint stays before the failing record)"
            )
        self._apply(cursor, step)
        return cut

    def _flush(self, *, force: bool) -> None:
        now = self.clock.now()
        for stream in self.reading.streams.values():
            for cursor in stream.cursors.values():
                self._apply(cursor, cursor.flush(now, self.rules, force=force))
