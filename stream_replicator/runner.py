"""The local stream runner: DynamoDB Streams semantics for the replicator outside AWS.

It does what Lambda's DynamoDB event source mapping does for the Lambda handler: lists every
shard of each route's stream (paginated DescribeStream), reads a parent shard to its end before
its children, starts at the trim horizon or just after the per-shard checkpoint in the control
table, renews expired iterators, builds events exactly as Lambda does, hands batches to the
same inner function the Lambda calls (batch.process_records), honours batchItemFailures by
reading again from the lowest failed sequence number, and checkpoints only what succeeded.

The parts: ShardReader (the Streams calls), ShardCursor (where a shard stands; pure),
Checkpointer (the control table), MetricsPublisher (PutMetricData); this module is the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, Route
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError, NotFoundError
from stream_replicator.apply import Replicator
from stream_replicator.batch import process_records
from stream_replicator.checkpointer import Checkpointer
from stream_replicator.cursor import Batch, ShardCursor, Step
from stream_replicator.events import ready_shards
from stream_replicator.metrics_publisher import MetricsPublisher
from stream_replicator.records import sequence_order
from stream_replicator.results import first_failure
from stream_replicator.run_summary import RunSummary, RunTally
from stream_replicator.runner_settings import Clock, RunnerSettings
from stream_replicator.shard_reader import ReadProblem, ShardReader, discover


@dataclass
class _Stream:
    route: Route
    reader: ShardReader
    cursors: dict[str, ShardCursor] = field(default_factory=dict)


class StreamRunner:
    """Runs the replicator over the routes' DynamoDB Streams (used by `dualwrite replicate`,
    by the demo and by tests, in-process).

        runner = StreamRunner(migration, clients, store, RunnerSettings(batch_size=100))
        summary = runner.run(until_caught_up=True)   # a RunSummary

    run(until_caught_up=False, duration=None, stop=None, on_progress=None):
    - until_caught_up: return once every shard of every backfilled route is drained (closed
      and read, or read up to its tip). A route whose backfill is not complete is not read at
      all: it is named in "held_routes" (and to `notify`), its records stay in the stream.
    - duration: return after that many seconds.
    - stop: a threading.Event; setting it stops cleanly: the batch in hand is finished and
      checkpointed first.
    - on_progress: called with the running summary after each batch.
    Without until_caught_up, duration or stop it runs until interrupted, re-reading the phase
    of held routes every `phase_interval` seconds and picking them up once backfilled.

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
        self.notify = notify or (lambda _message: None)
        self._streams_client = streams
        self._clients = clients
        self.checkpointer = Checkpointer(store)
        self.publisher = MetricsPublisher(
            lambda: cloudwatch if cloudwatch is not None else clients.cloudwatch,
            migration.metrics_namespace,
            self.notify,
        )
        self._streams: dict[str, _Stream] = {}
        self._active: set[str] = set()
        self._held: dict[str, str] = {}
        self.tally = RunTally()
        self._started = 0.0

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
        s = self.settings
        mono = self.clock.mono
        stop = stop or threading.Event()
        self._started = mono()
        deadline = self._started + duration if duration is not None else None
        self._discover()
        self._check_phases(announce_waiting=not until_caught_up)
        next_phase = self._started + s.phase_interval
        next_refresh = self._started + s.shard_refresh_interval
        next_metrics = self._started + s.metrics_interval
        caught_up = False
        try:
            while not stop.is_set():
                now = mono()
                if deadline is not None and now >= deadline:
                    break
                if now >= next_phase:
                    self._check_phases(announce_waiting=False)
                    next_phase = now + s.phase_interval
                if now >= next_refresh:
                    self._refresh_active()
                    next_refresh = now + s.shard_refresh_interval
                got = 0
                for cursor in self._ready():
                    if stop.is_set() or (deadline is not None and mono() >= deadline):
                        break
                    if cursor.waiting(mono()):
                        continue
                    n = self._poll(cursor, may_give_up=until_caught_up)
                    got += n
                    if cursor.done:
                        self._refresh(self._streams[cursor.route])
                    if n and on_progress is not None:
                        on_progress(self.summary())
                if s.publish_metrics and mono() >= next_metrics:
                    self.publisher.publish(self.tally.counts)
                    next_metrics = mono() + s.metrics_interval
                if until_caught_up and self._all_caught_up():
                    # a split may just have added shards: look once more before leaving
                    self._refresh_active()
                    if self._all_caught_up():
                        caught_up = True
                        break
                if got:
                    continue
                wait = self._wait(until_caught_up, deadline)
                if wait > 0:
                    stop.wait(wait)
        finally:
            self._flush(force=True)
            if s.publish_metrics:
                self.publisher.publish(self.tally.counts)
        return self.summary(caught_up=caught_up)

    def _wait(self, until_caught_up: bool, deadline: float | None) -> float:
        now = self.clock.mono()
        ready = self._ready()
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
            {name: list(st.cursors.values()) for name, st in self._streams.items()},
            self._held,
            duration_s=self.clock.mono() - self._started,
            caught_up=caught_up,
        )

    # --- streams, shards, phases --------------------------------------------------------
    def _discover(self) -> None:
        readers = discover(self.migration, self.replicator.dynamodb, self.streams)
        self._streams = {r.name: _Stream(r, readers[r.name]) for r in self.migration.routes}

    def _check_phases(self, *, announce_waiting: bool) -> None:
        for route in self.migration.routes:
            if route.name in self._active:
                continue
            try:
                phase = self.store.phase(route.name).phase.value
            except NotFoundError:
                raise ConfigError(
                    f"control table {self.store.table} does not exist; run `dualwrite prepare`"
                ) from None
            if phase == "backfilled":
                if route.name in self._held:
                    self.notify(f"route {route.name} is backfilled now: replicating it")
                self._held.pop(route.name, None)
                self._active.add(route.name)
                self._refresh(self._streams[route.name])
                continue
            if route.name not in self._held:
                self._held[route.name] = phase
                if announce_waiting:
                    self.notify(
                        f"route {route.name} is not backfilled yet (phase {phase}): its changes "
                        f"stay in the stream; waiting for its backfill (checking every "
                        f"{self.settings.phase_interval:g}s)"
                    )
                else:
                    self.notify(
                        f"route {route.name} is not backfilled yet (phase {phase}): nothing to "
                        f"do for it yet, its changes stay in the stream; run `dualwrite "
                        f"backfill --route {route.name}` first"
                    )

    def _refresh_active(self) -> None:
        for name in sorted(self._active):
            self._refresh(self._streams[name])

    def _refresh(self, stream: _Stream) -> None:
        for shard in stream.reader.shards():
            cursor = stream.cursors.get(shard.shard_id)
            if cursor is not None:
                cursor.shard = shard
                continue
            stream.cursors[shard.shard_id] = self.checkpointer.resume(
                stream.route.name, stream.reader.stream_arn, shard
            )

    def _ready(self) -> list[ShardCursor]:
        out: list[ShardCursor] = []
        for name in sorted(self._active):
            cursors = self._streams[name].cursors
            done = [sid for sid, c in cursors.items() if c.done]
            for shard in ready_shards([c.shard for c in cursors.values()], done):
                cursor = cursors[shard.shard_id]
                if not cursor.stuck:
                    out.append(cursor)
        return out

    def _all_caught_up(self) -> bool:
        return all(c.idle(self.rules) for c in self._ready())

    # --- one shard ----------------------------------------------------------------------
    def _apply(self, cursor: ShardCursor, step: Step) -> None:
        if step.save:
            self.checkpointer.save(cursor, self.clock.now())

    def _start(self, cursor: ShardCursor, reader: ShardReader) -> bool:
        """Take an iterator just after the checkpoint; False when the shard is finished."""
        start = reader.start(cursor.shard_id, cursor.sequence_number)
        if start.trimmed:
            self.tally.trimmed.append(f"{cursor.route}:{cursor.shard_id}")
            self.notify(
                f"route {cursor.route}: shard {cursor.shard_id} was trimmed past its "
                "checkpoint (records older than 24 h are gone); continuing from the trim "
                "horizon. Run `dualwrite reconcile --repair` for this route"
            )
        if start.gone:
            self.notify(f"route {cursor.route}: shard {cursor.shard_id} no longer exists")
        self._apply(cursor, cursor.started(start.iterator))
        return start.iterator is not None

    def _poll(self, cursor: ShardCursor, *, may_give_up: bool) -> int:
        """One GetRecords on a shard and, when it returned records, one batch. Returns the
        number of records checkpointed. With may_give_up (--until-caught-up), a shard whose
        batch failed max_retries times in a row is left alone for the rest of the run."""
        reader = self._streams[cursor.route].reader
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
            self.settings.retry_backoff.delay,
            may_give_up=may_give_up,
        )
        self.tally.add_batch(cursor.route, processed.settled().values(), len(failures), step.lag_ms)
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
        for stream in self._streams.values():
            for cursor in stream.cursors.values():
                self._apply(cursor, cursor.flush(now, self.rules, force=force))
