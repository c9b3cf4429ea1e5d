"""Where the local runner stands in one shard, and how each read moves it (pure: no boto3, no
clock; the caller passes the time in).

States (ShardState):

    READING  --idle_polls empty reads in a row-->  CAUGHT_UP  --records-->  READING
    READING / CAUGHT_UP  --the shard is closed and read to its end, or gone-->  DONE
    READING  --a batch failed max_retries times in a row (until-caught-up runs)-->  STUCK
    (a throttled or 5xx read only waits, with its own backoff)

Orthogonal to the state: `iterator` (None: the next read first asks GetShardIterator, just
after the checkpoint) and `retry_at` (a throttled read or a failed batch waits until then,
with backoff).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from dualwrite.control.shards import ShardCheckpoint
from stream_replicator.events import Shard


class ShardState(StrEnum):
    READING = "reading"
    CAUGHT_UP = "caught_up"
    DONE = "done"
    STUCK = "stuck"


@dataclass(frozen=True)
class CursorRules:
    #: empty reads in a row after which an open shard counts as read to its end: GetRecords
    #: "might take multiple calls to get to a portion of the shard that contains stream
    #: records" (its API reference), and a drain or --until-caught-up is judged on this. An
    #: until-caught-up run makes them back to back (a few ms each)
    idle_polls: int = 5
    #: failed batches in a row after which an until-caught-up run gives up on a shard
    max_retries: int = 8
    #: at most this often (seconds) a caught-up shard's checkpoint is saved again
    checkpoint_interval: float = 10.0


@dataclass(frozen=True)
class Now:
    """The time of a transition: wall clock (epoch s, stored) and monotonic (for waits)."""

    wall: float
    mono: float


@dataclass(frozen=True)
class Batch:
    """What one batch of a shard settled, as the cursor needs it."""

    #: records before the lowest failed one (all of them when none failed)
    settled: int
    #: sequence number and ApproximateCreationDateTime (epoch s) of the last settled record
    last_sequence_number: str | None
    last_created_at: float | None
    #: the lowest failed sequence number, None when every record settled
    lowest_failure: str | None
    next_iterator: str | None


@dataclass(frozen=True)
class Step:
    """What a transition asks of the runner."""

    save: bool = False
    #: the lag (ms) of the newest settled record, when the batch settled one with a time
    lag_ms: int | None = None
    #: the shard was just given up (STUCK)
    gave_up: bool = False


@dataclass
class ShardCursor:
    route: str
    stream_arn: str
    shard: Shard
    state: ShardState = ShardState.READING
    sequence_number: str | None = None
    records: int = 0
    lag_ms: int | None = None
    caught_up_at: float | None = None
    iterator: str | None = None
    empty_polls: int = 0
    failures_in_row: int = 0
    #: throttled (or 5xx) reads in a row: their backoff only, never a reason to give up
    throttles_in_row: int = 0
    retry_at: float = 0.0
    last_saved: float = 0.0
    #: lag of the newest record applied in this run (for the run's summary)
    run_lag_ms: int | None = None

    @classmethod
    def resume(
        cls, route: str, stream_arn: str, shard: Shard, saved: ShardCheckpoint | None
    ) -> ShardCursor:
        if saved is None:
            return cls(route, stream_arn, shard)
        return cls(
            route,
            stream_arn,
            shard,
            state=ShardState.DONE if saved.done else ShardState.READING,
            sequence_number=saved.sequence_number,
            records=saved.records,
            lag_ms=saved.lag_ms,
            caught_up_at=saved.caught_up_at,
        )

    @property
    def shard_id(self) -> str:
        return self.shard.shard_id

    @property
    def done(self) -> bool:
        return self.state is ShardState.DONE

    @property
    def stuck(self) -> bool:
        return self.state is ShardState.STUCK

    def idle(self, rules: CursorRules) -> bool:
        """Found nothing new idle_polls times in a row (and not read anything since)."""
        return self.empty_polls >= rules.idle_polls

    def waiting(self, mono: float) -> bool:
        return self.retry_at > mono

    def checkpoint(self) -> ShardCheckpoint:
        return ShardCheckpoint(
            stream_arn=self.stream_arn,
            shard_id=self.shard_id,
            route=self.route,
            parent_shard_id=self.shard.parent_id,
            sequence_number=self.sequence_number,
            done=self.done,
            records=self.records,
            lag_ms=self.lag_ms,
            caught_up_at=self.caught_up_at,
        )

    # --- transitions --------------------------------------------------------------------
    def saved(self, now: Now) -> None:
        self.last_saved = now.mono

    def started(self, iterator: str | None) -> Step:
        """GetShardIterator answered; None: the shard has nothing more (or is gone)."""
        self.iterator = iterator
        if iterator is None:
            self.state = ShardState.DONE
            return Step(save=True)
        return Step()

    def renew(self) -> None:
        """The iterator expired (or its records were trimmed): take a new one."""
        self.iterator = None

    def throttled(self, now: Now, delay: Callable[[int], float]) -> None:
        """A streams call said "slow down" (throttled, or a 5xx): read again later, backing
        off; failed batches alone count towards giving the shard up."""
        self.throttles_in_row += 1
        self.retry_at = now.mono + delay(self.throttles_in_row)

    def empty(self, next_iterator: str | None, now: Now, rules: CursorRules) -> Step:
        """A read returned no records."""
        self.throttles_in_row = 0
        self.iterator = next_iterator
        if next_iterator is None:
            self.state = ShardState.DONE
            return self._caught_up(now, rules, first=True)
        self.empty_polls += 1
        if self.empty_polls >= rules.idle_polls:
            self.state = ShardState.CAUGHT_UP
            return self._caught_up(now, rules, first=self.empty_polls == rules.idle_polls)
        return Step()

    def batch(
        self,
        batch: Batch,
        now: Now,
        rules: CursorRules,
        delay: Callable[[int], float],
        *,
        may_give_up: bool,
    ) -> Step:
        """A read returned records and they went through the replicator."""
        self.empty_polls = 0
        self.throttles_in_row = 0
        self.state = ShardState.READING
        lag: int | None = None
        if batch.settled and batch.last_sequence_number is not None:
            self.sequence_number = batch.last_sequence_number
            self.records += batch.settled
            if batch.last_created_at is not None:
                lag = max(0, int(now.wall * 1000.0 - batch.last_created_at * 1000.0))
                self.lag_ms = self.run_lag_ms = lag
        gave_up = False
        if batch.lowest_failure is not None:
            self.failures_in_row += 1
            # read again from the lowest failed record: a new iterator after the checkpoint
            self.iterator = None
            self.retry_at = now.mono + delay(self.failures_in_row)
            if may_give_up and self.failures_in_row >= rules.max_retries:
                self.state = ShardState.STUCK
                gave_up = True
        else:
            self.failures_in_row = 0
            self.iterator = batch.next_iterator
            if batch.next_iterator is None:  # closed, and this was the end of it
                self.state = ShardState.DONE
                self.caught_up_at = now.wall
        return Step(save=bool(batch.settled) or self.done, lag_ms=lag, gave_up=gave_up)

    def flush(self, now: Now, rules: CursorRules, *, force: bool) -> Step:
        """At the end of a run (force) or between batches: refresh a caught-up checkpoint."""
        if self.idle(rules) and (force or now.mono - self.last_saved >= rules.checkpoint_interval):
            self.caught_up_at = now.wall
            self.lag_ms = 0
            return Step(save=True)
        return Step()

    def _caught_up(self, now: Now, rules: CursorRules, *, first: bool) -> Step:
        self.lag_ms = 0
        self.caught_up_at = now.wall
        return Step(save=first or now.mono - self.last_saved >= rules.checkpoint_interval)
