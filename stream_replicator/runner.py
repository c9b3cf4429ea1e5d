"""The local stream runner: DynamoDB Streams semantics for the replicator outside AWS.

It does what Lambda's DynamoDB event source mapping does for the Lambda handler: lists every
shard of each route's stream (paginated DescribeStream), reads a parent shard to its end before
its children, starts at the trim horizon or just after the per-shard checkpoint in the control
table, renews expired iterators, builds events exactly as Lambda does, hands batches to the
same inner function the Lambda calls (batch.process_records), honours batchItemFailures by
reading again from the lowest failed sequence number, and checkpoints only what succeeded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dualwrite import metrics as metric_names
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import list_shards
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, Route
from dualwrite.control import ControlStore
from dualwrite.errors import AwsError, ConfigError, NotFoundError, ThrottledError
from stream_replicator.apply import APPLIED, QUARANTINED, Replicator, RouteCounts, metric_values
from stream_replicator.batch import process_records
from stream_replicator.events import Shard, lambda_record, ready_shards
from stream_replicator.records import sequence_order

#: GetRecords errors after which a new iterator is taken from the checkpoint
RENEW = {"ExpiredIteratorException", "TrimmedDataAccessException"}
#: GetRecords errors that only mean "slow down"
SLOW_DOWN = {"LimitExceededException"}


@dataclass
class ShardCursor:
    """Where the runner stands in one shard; `checkpoint()` is what the control table keeps."""

    route: str
    stream_arn: str
    shard: Shard
    sequence_number: str | None = None
    done: bool = False
    records: int = 0
    lag_ms: int | None = None
    caught_up_at: float | None = None
    iterator: str | None = None
    empty_polls: int = 0
    failures_in_row: int = 0
    retry_at: float = 0.0
    stuck: bool = False
    last_saved: float = 0.0
    #: lag of the newest record applied in this run (for the run's summary)
    run_lag_ms: int | None = None

    @property
    def shard_id(self) -> str:
        return self.shard.shard_id

    def checkpoint(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "stream_arn": self.stream_arn,
            "shard_id": self.shard_id,
            "parent_shard_id": self.shard.parent_id,
            "sequence_number": self.sequence_number,
            "done": self.done,
            "records": self.records,
            "lag_ms": self.lag_ms,
            "caught_up_at": self.caught_up_at,
        }


@dataclass
class _Stream:
    route: Route
    arn: str
    region: str
    cursors: dict[str, ShardCursor] = field(default_factory=dict)


class StreamRunner:
    """Runs the replicator over the routes' DynamoDB Streams (used by `dualwrite replicate`,
    by the demo and by tests, in-process).

        runner = StreamRunner(migration, clients, store)
        summary = runner.run(until_caught_up=True)
        # {"records", "applied", "failed", "quarantined", "lag_ms", "max_lag_ms",
        #  "held_routes", "routes", "shards", "trimmed_shards", "renewed_iterators",
        #  "stuck_shards", "caught_up", "duration_s"}

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

    Counts: "records" are records read and checkpointed in this run, "applied" and
    "quarantined" their outcomes, "failed" the failure reports (each is redelivered; a record
    failing twice counts twice), "lag_ms" the lag (now - ApproximateCreationDateTime) of the
    newest record applied, "max_lag_ms" the largest such lag, both null when nothing was
    applied. Shard checkpoints (ControlStore.save_shard) hold lag_ms of the newest applied
    record, 0 once the shard has nothing more to read, and caught_up_at.

    Metrics are published per route with PutMetricData (never EMF on stdout) every
    `metrics_interval` seconds and at the end.
    """

    def __init__(
        self,
        migration: Migration,
        clients: Clients,
        store: ControlStore,
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        phase_interval: float = 5.0,
        shard_refresh_interval: float = 30.0,
        checkpoint_interval: float = 10.0,
        metrics_interval: float = 60.0,
        idle_polls: int = 2,
        max_retries: int = 8,
        publish_metrics: bool = True,
        replicator: Replicator | None = None,
        streams: Any = None,
        cloudwatch: Any = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        retry_backoff: Backoff | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ConfigError("batch size must be between 1 and 1000 (GetRecords' limit)")
        self.migration = migration
        self.clients = clients
        self.store = store
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.phase_interval = phase_interval
        self.shard_refresh_interval = shard_refresh_interval
        self.checkpoint_interval = checkpoint_interval
        self.metrics_interval = metrics_interval
        self.idle_polls = max(1, idle_polls)
        self.max_retries = max_retries
        self.publish_metrics = publish_metrics
        self.replicator = replicator or Replicator(
            migration, clients, store, clock=clock, monotonic=monotonic, phase_ttl=phase_interval
        )
        self._streams_client = streams
        self._cloudwatch = cloudwatch
        self.clock = clock
        self.monotonic = monotonic
        self.retry_backoff = retry_backoff or Backoff(base=0.2, cap=10.0)
        self.notify = notify or (lambda _message: None)
        self._streams: dict[str, _Stream] = {}
        self._active: set[str] = set()
        self._held: dict[str, str] = {}
        self._counts: dict[str, RouteCounts] = {}
        self._published: dict[str, RouteCounts] = {}
        self._failed = 0
        self._max_lag: int | None = None
        self._trimmed: list[str] = []
        self._renewed = 0
        self._started = 0.0

    @property
    def streams(self) -> Any:
        return self._streams_client if self._streams_client is not None else self.clients.streams

    @property
    def cloudwatch(self) -> Any:
        return self._cloudwatch if self._cloudwatch is not None else self.clients.cloudwatch

    # --- the loop -----------------------------------------------------------------------
    def run(
        self,
        until_caught_up: bool = False,
        duration: float | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        stop = stop or threading.Event()
        self._started = self.monotonic()
        deadline = self._started + duration if duration is not None else None
        self._discover()
        self._check_phases(announce_waiting=not until_caught_up)
        next_phase = self._started + self.phase_interval
        next_refresh = self._started + self.shard_refresh_interval
        next_metrics = self._started + self.metrics_interval
        caught_up = False
        try:
            while not stop.is_set():
                now = self.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if now >= next_phase:
                    self._check_phases(announce_waiting=False)
                    next_phase = now + self.phase_interval
                if now >= next_refresh:
                    for name in sorted(self._active):
                        self._refresh(self._streams[name])
                    next_refresh = now + self.shard_refresh_interval
                got = 0
                for cursor in self._ready():
                    if stop.is_set() or (deadline is not None and self.monotonic() >= deadline):
                        break
                    if cursor.retry_at > self.monotonic():
                        continue
                    n = self._poll(cursor, may_give_up=until_caught_up)
                    got += n
                    if cursor.done:
                        self._refresh(self._streams[cursor.route])
                    if n and on_progress is not None:
                        on_progress(self.summary())
                if self.publish_metrics and self.monotonic() >= next_metrics:
                    self._publish()
                    next_metrics = self.monotonic() + self.metrics_interval
                if until_caught_up and self._all_caught_up():
                    # a split may just have added shards: look once more before leaving
                    for name in sorted(self._active):
                        self._refresh(self._streams[name])
                    if self._all_caught_up():
                        caught_up = True
                        break
                if got:
                    continue
                wait = self.poll_interval
                if until_caught_up and self._pending_idle_polls():
                    wait = 0.0
                retry = self._next_retry()
                if retry is not None:
                    wait = min(wait, max(0.0, retry - self.monotonic()))
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - self.monotonic()))
                if wait > 0:
                    stop.wait(wait)
        finally:
            self._save_caught_up(force=True)
            if self.publish_metrics:
                self._publish()
        summary = self.summary()
        summary["caught_up"] = caught_up
        return summary

    # --- summary ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        total = RouteCounts()
        for counts in self._counts.values():
            total.add(counts)
        cursors = [c for s in self._streams.values() for c in s.cursors.values()]
        lags = [c.run_lag_ms for c in cursors if c.run_lag_ms is not None]
        routes: list[dict[str, Any]] = []
        for route in self.migration.routes:
            counts = self._counts.get(route.name) or RouteCounts()
            stream = self._streams.get(route.name)
            routes.append(
                {
                    "route": route.name,
                    "held": route.name in self._held,
                    "phase": self._held.get(route.name, "backfilled"),
                    "records": counts.records,
                    "applied": counts.applied,
                    "quarantined": counts.quarantined,
                    "unknown_role": counts.unknown_role,
                    "shards": len(stream.cursors) if stream is not None else 0,
                }
            )
        return {
            "records": total.records,
            "applied": total.applied,
            "failed": self._failed,
            "quarantined": total.quarantined,
            "lag_ms": max(lags) if lags else None,
            "max_lag_ms": self._max_lag,
            "held_routes": sorted(self._held),
            "routes": routes,
            "shards": len(cursors),
            "shards_done": sum(1 for c in cursors if c.done),
            "trimmed_shards": list(self._trimmed),
            "renewed_iterators": self._renewed,
            "stuck_shards": [f"{c.route}:{c.shard_id}" for c in cursors if c.stuck],
            "duration_s": round(self.monotonic() - self._started, 3),
        }

    # --- streams, shards, phases --------------------------------------------------------
    def _discover(self) -> None:
        """Each route's stream, from DescribeTable's LatestStreamArn (checked before reading)."""
        for route in self.migration.routes:
            desc = tables.describe(self.replicator.dynamodb, route.source)
            if desc is None:
                raise ConfigError(f"route {route.name}: source table {route.source} does not exist")
            view = tables.stream_view(desc)
            arn = desc.get("LatestStreamArn")
            if view is None or not arn:
                raise ConfigError(
                    f"route {route.name}: {route.source} has no stream; run `dualwrite prepare`"
                )
            if view != tables.STREAM_VIEW:
                raise ConfigError(
                    f"route {route.name}: the stream on {route.source} has view type {view}; "
                    f"dualwrite needs {tables.STREAM_VIEW} (run `dualwrite prepare`)"
                )
            region = arn.split(":")[3] if arn.count(":") >= 5 else ""
            self._streams[route.name] = _Stream(route, arn, region)

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
                        f"{self.phase_interval:g}s)"
                    )
                else:
                    self.notify(
                        f"route {route.name} is not backfilled yet (phase {phase}): nothing to "
                        f"do for it yet, its changes stay in the stream; run `dualwrite "
                        f"backfill --route {route.name}` first"
                    )

    def _list_shards(self, arn: str) -> list[Shard]:
        return [Shard.from_describe(s) for s in list_shards(self.streams, arn)]

    def _refresh(self, stream: _Stream) -> None:
        for shard in self._list_shards(stream.arn):
            cursor = stream.cursors.get(shard.shard_id)
            if cursor is not None:
                cursor.shard = shard
                continue
            saved = self.store.shard(stream.arn, shard.shard_id) or {}
            stream.cursors[shard.shard_id] = ShardCursor(
                route=stream.route.name,
                stream_arn=stream.arn,
                shard=shard,
                sequence_number=saved.get("sequence_number"),
                done=bool(saved.get("done")),
                records=int(saved.get("records") or 0),
                lag_ms=saved.get("lag_ms"),
                caught_up_at=saved.get("caught_up_at"),
            )

    def _ready(self) -> list[ShardCursor]:
        out: list[ShardCursor] = []
        for name in sorted(self._active):
            stream = self._streams[name]
            cursors = stream.cursors
            done = [sid for sid, c in cursors.items() if c.done]
            for shard in ready_shards([c.shard for c in cursors.values()], done):
                cursor = cursors[shard.shard_id]
                if not cursor.stuck:
                    out.append(cursor)
        return out

    def _all_caught_up(self) -> bool:
        return all(c.empty_polls >= self.idle_polls for c in self._ready())

    def _pending_idle_polls(self) -> bool:
        return any(
            c.empty_polls < self.idle_polls and c.retry_at <= self.monotonic()
            for c in self._ready()
        )

    def _next_retry(self) -> float | None:
        times = [c.retry_at for c in self._ready() if c.retry_at > self.monotonic()]
        return min(times) if times else None

    # --- one shard ----------------------------------------------------------------------
    def _iterator(self, cursor: ShardCursor) -> str | None:
        """An iterator just after the checkpoint (or at the trim horizon without one)."""
        kwargs: dict[str, Any] = {"StreamArn": cursor.stream_arn, "ShardId": cursor.shard_id}
        if cursor.sequence_number:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["SequenceNumber"] = cursor.sequence_number
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        try:
            try:
                with aws_call("GetShardIterator"):
                    response = self.streams.get_shard_iterator(**kwargs)
            except AwsError as exc:
                if exc.code != "TrimmedDataAccessException":
                    raise
                # the checkpoint is older than the stream's 24 h retention: the records in
                # between are gone; say so loudly, go on from what is left
                self._trimmed.append(f"{cursor.route}:{cursor.shard_id}")
                self.notify(
                    f"route {cursor.route}: shard {cursor.shard_id} was trimmed past its "
                    "checkpoint (records older than 24 h are gone); continuing from the trim "
                    "horizon. Run `dualwrite reconcile --repair` for this route"
                )
                kwargs = {
                    "StreamArn": cursor.stream_arn,
                    "ShardId": cursor.shard_id,
                    "ShardIteratorType": "TRIM_HORIZON",
                }
                with aws_call("GetShardIterator"):
                    response = self.streams.get_shard_iterator(**kwargs)
        except NotFoundError:
            # the shard left the stream (older than 24 h): nothing more can be read from it
            self.notify(f"route {cursor.route}: shard {cursor.shard_id} no longer exists")
            cursor.done = True
            self._save(cursor)
            return None
        iterator = response.get("ShardIterator")
        if not iterator:
            cursor.done = True
            self._save(cursor)
            return None
        return str(iterator)

    def _poll(self, cursor: ShardCursor, *, may_give_up: bool) -> int:
        """One GetRecords on a shard and, when it returned records, one batch. Returns the
        number of records checkpointed. With may_give_up (--until-caught-up), a shard whose
        batch failed max_retries times in a row is left alone for the rest of the run."""
        if cursor.iterator is None:
            cursor.iterator = self._iterator(cursor)
            if cursor.iterator is None:
                return 0
        try:
            with aws_call("GetRecords"):
                response = self.streams.get_records(
                    ShardIterator=cursor.iterator, Limit=self.batch_size
                )
        except AwsError as exc:
            if exc.code in RENEW:
                self._renewed += 1
                cursor.iterator = None
                return 0
            if isinstance(exc, ThrottledError) or exc.code in SLOW_DOWN:
                cursor.failures_in_row += 1
                cursor.retry_at = self.monotonic() + self.retry_backoff.delay(
                    cursor.failures_in_row
                )
                return 0
            raise
        records = response.get("Records") or []
        next_iterator = response.get("NextShardIterator")
        if not records:
            cursor.iterator = next_iterator
            if next_iterator is None:
                cursor.done = True
                self._mark_caught_up(cursor)
            else:
                cursor.empty_polls += 1
                if cursor.empty_polls >= self.idle_polls:
                    self._mark_caught_up(cursor)
            return 0
        cursor.empty_polls = 0
        stream = self._streams[cursor.route]
        events = [lambda_record(r, stream.arn, stream.region) for r in records]
        processed = process_records(self.replicator, events)
        result = processed.result
        failures = [f["itemIdentifier"] for f in processed.response["batchItemFailures"]]
        cut = len(events)
        if failures:
            lowest = min(failures, key=sequence_order)
            cut = next(
                (i for i, e in enumerate(events) if e["dynamodb"]["SequenceNumber"] == lowest),
                0,
            )
        counts = self._counts.setdefault(cursor.route, RouteCounts())
        now_ms = self.clock() * 1000.0
        for i in range(cut):
            counts.records += 1
            if result.outcomes[i] == APPLIED:
                counts.applied += 1
                counts.unknown_role += int(result.unknown_roles[i])
            elif result.outcomes[i] == QUARANTINED:
                counts.quarantined += 1
        if cut:
            last = events[cut - 1]
            cursor.sequence_number = str(last["dynamodb"]["SequenceNumber"])
            cursor.records += cut
            created = last["dynamodb"].get("ApproximateCreationDateTime")
            if isinstance(created, int | float):
                lag = max(0, int(now_ms - float(created) * 1000.0))
                cursor.lag_ms = cursor.run_lag_ms = counts.lag_ms = lag
                self._max_lag = lag if self._max_lag is None else max(self._max_lag, lag)
        if failures:
            self._failed += len(failures)
            counts.failed += len(failures)
            cursor.failures_in_row += 1
            # read again from the lowest failed record: a new iterator after the checkpoint
            cursor.iterator = None
            cursor.retry_at = self.monotonic() + self.retry_backoff.delay(cursor.failures_in_row)
            if may_give_up and cursor.failures_in_row >= self.max_retries:
                cursor.stuck = True
                self.notify(
                    f"route {cursor.route}: shard {cursor.shard_id} keeps failing at sequence "
                    f"number {lowest} after {cursor.failures_in_row} attempts; giving up on it "
                    "for this run (its checkpoint stays before the failing record)"
                )
        else:
            cursor.failures_in_row = 0
            cursor.iterator = next_iterator
            if next_iterator is None:  # closed, and this was the end of it
                cursor.done = True
                cursor.caught_up_at = self.clock()
        if cut or cursor.done:
            self._save(cursor)
        return cut

    def _mark_caught_up(self, cursor: ShardCursor) -> None:
        first = cursor.empty_polls == self.idle_polls or cursor.done
        cursor.lag_ms = 0
        cursor.caught_up_at = self.clock()
        if first or self.monotonic() - cursor.last_saved >= self.checkpoint_interval:
            self._save(cursor)

    def _save_caught_up(self, *, force: bool) -> None:
        for stream in self._streams.values():
            for cursor in stream.cursors.values():
                if cursor.empty_polls >= self.idle_polls and (
                    force or self.monotonic() - cursor.last_saved >= self.checkpoint_interval
                ):
                    cursor.caught_up_at = self.clock()
                    cursor.lag_ms = 0
                    self._save(cursor)

    def _save(self, cursor: ShardCursor) -> None:
        self.store.save_shard(cursor.stream_arn, cursor.shard_id, cursor.checkpoint())
        cursor.last_saved = self.monotonic()

    # --- metrics ------------------------------------------------------------------------
    def _publish(self) -> None:
        """PutMetricData per route: what happened since the last publication."""
        for route, counts in sorted(self._counts.items()):
            before = self._published.get(route, RouteCounts())
            delta = RouteCounts(
                records=counts.records - before.records,
                applied=counts.applied - before.applied,
                quarantined=counts.quarantined - before.quarantined,
                failed=counts.failed - before.failed,
                unknown_role=counts.unknown_role - before.unknown_role,
                lag_ms=counts.lag_ms,
            )
            if not delta.records and not delta.failed and before.records:
                continue
            try:
                metric_names.publish(
                    self.cloudwatch,
                    self.migration.metrics_namespace,
                    route,
                    metric_values(delta),
                )
            except Exception as exc:  # metrics must never stop replication
                self.notify(f"could not publish metrics for route {route}: {exc}")
                return
            self._published[route] = replace(counts)
