"""The per-shard cursor's state transitions (pure: the time is passed in)."""

from __future__ import annotations

from dualwrite.control.shards import ShardCheckpoint
from stream_replicator.cursor import Batch, CursorRules, Now, ShardCursor, ShardState
from stream_replicator.events import Shard

RULES = CursorRules(idle_polls=2, max_retries=3, checkpoint_interval=10.0)
T0 = Now(wall=1_700_000_000.0, mono=100.0)


def at(seconds: float) -> Now:
    return Now(T0.wall + seconds, T0.mono + seconds)


def delay(attempt: int) -> float:
    return float(attempt)  # 1 s, 2 s, 3 s...


def cursor(**kwargs: object) -> ShardCursor:
    c = ShardCursor("servers", "arn:stream", Shard("s1", None))
    for name, value in kwargs.items():
        setattr(c, name, value)
    return c


def batch(settled: int, *, failure: str | None = None, nxt: str | None = "it-2") -> Batch:
    return Batch(
        settled=settled,
        last_sequence_number=f"{100 + settled}" if settled else None,
        last_created_at=T0.wall - 1.5 if settled else None,
        lowest_failure=failure,
        next_iterator=nxt,
    )


def test_a_new_shard_reads_from_its_start_and_a_checkpoint_resumes_after_it() -> None:
    fresh = ShardCursor.resume("servers", "arn:stream", Shard("s1", None), None)
    assert fresh.state is ShardState.READING and fresh.iterator is None
    assert fresh.sequence_number is None
    saved = ShardCheckpoint("arn:stream", "s1", sequence_number="105", records=5, done=True)
    resumed = ShardCursor.resume("servers", "arn:stream", Shard("s1", None), saved)
    assert resumed.state is ShardState.DONE and resumed.sequence_number == "105"
    assert resumed.records == 5


def test_no_iterator_means_the_shard_is_done_and_saved() -> None:
    c = cursor()
    assert c.started("it-1").save is False and c.iterator == "it-1"
    assert c.state is ShardState.READING
    step = c.started(None)
    assert step.save is True and c.state is ShardState.DONE and c.done


def test_empty_reads_catch_up_after_idle_polls_and_save_once_then_at_intervals() -> None:
    c = cursor(iterator="it-1")
    assert c.empty("it-2", T0, RULES).save is False
    assert c.state is ShardState.READING and not c.idle(RULES)
    first = c.empty("it-3", at(1), RULES)
    assert first.save is True and c.state is ShardState.CAUGHT_UP and c.idle(RULES)
    assert c.lag_ms == 0 and c.caught_up_at == at(1).wall
    c.saved(at(1))
    assert c.empty("it-4", at(2), RULES).save is False  # saved a second ago
    assert c.empty("it-5", at(11), RULES).save is True  # checkpoint_interval later


def test_an_empty_read_of_a_closed_shard_finishes_it() -> None:
    c = cursor(iterator="it-1")
    step = c.empty(None, T0, RULES)
    assert step.save is True and c.state is ShardState.DONE and c.caught_up_at == T0.wall


def test_records_move_the_checkpoint_and_measure_the_lag() -> None:
    c = cursor(iterator="it-1", empty_polls=2, state=ShardState.CAUGHT_UP)
    step = c.batch(batch(4), T0, RULES, delay, may_give_up=True)
    assert step == step.__class__(save=True, lag_ms=1500, gave_up=False)
    assert c.state is ShardState.READING and c.empty_polls == 0
    assert (c.sequence_number, c.records, c.lag_ms, c.iterator) == ("104", 4, 1500, "it-2")


def test_a_closed_shard_read_to_its_end_is_done() -> None:
    c = cursor(iterator="it-1")
    step = c.batch(batch(2, nxt=None), T0, RULES, delay, may_give_up=False)
    assert step.save is True and c.state is ShardState.DONE and c.caught_up_at == T0.wall


def test_a_failed_batch_keeps_what_settled_and_rereads_after_a_backoff() -> None:
    c = cursor(iterator="it-1")
    step = c.batch(batch(1, failure="102"), T0, RULES, delay, may_give_up=True)
    assert step.save is True and not step.gave_up
    assert c.sequence_number == "101" and c.records == 1
    assert c.iterator is None  # a new one, just after the checkpoint
    assert c.failures_in_row == 1 and c.retry_at == T0.mono + 1.0
    assert c.waiting(T0.mono + 0.5) and not c.waiting(T0.mono + 1.0)
    # nothing settled the next times: no checkpoint to save
    assert c.batch(batch(0, failure="102"), at(1), RULES, delay, may_give_up=True).save is False
    assert c.state is ShardState.READING and c.retry_at == at(1).mono + 2.0


def test_max_retries_failures_in_a_row_give_up_only_when_allowed() -> None:
    stubborn = cursor(iterator="it-1")
    for attempt in range(1, 4):
        step = stubborn.batch(batch(0, failure="101"), at(attempt), RULES, delay, may_give_up=True)
    assert step.gave_up is True and stubborn.state is ShardState.STUCK and stubborn.stuck
    patient = cursor(iterator="it-1")
    for attempt in range(1, 6):
        step = patient.batch(batch(0, failure="101"), at(attempt), RULES, delay, may_give_up=False)
    assert step.gave_up is False and patient.state is ShardState.READING
    assert patient.failures_in_row == 5


def test_a_successful_batch_resets_the_failures() -> None:
    c = cursor(iterator="it-1", failures_in_row=2)
    c.batch(batch(3), T0, RULES, delay, may_give_up=True)
    assert c.failures_in_row == 0


def test_throttling_waits_longer_each_time_and_keeps_the_iterator() -> None:
    c = cursor(iterator="it-1", empty_polls=2, state=ShardState.CAUGHT_UP)
    c.throttled(T0, delay)
    c.throttled(at(1), delay)
    assert c.throttles_in_row == 2 and c.retry_at == at(1).mono + 2.0
    assert c.failures_in_row == 0  # a throttle is no failed batch: never a reason to give up
    assert c.iterator == "it-1" and c.state is ShardState.CAUGHT_UP
    c.empty("it-2", at(2), RULES)  # a read that answered: the next throttle backs off anew
    assert c.throttles_in_row == 0


def test_an_expired_iterator_is_renewed_without_losing_the_state() -> None:
    c = cursor(iterator="it-1", empty_polls=2, state=ShardState.CAUGHT_UP)
    c.renew()
    assert c.iterator is None and c.state is ShardState.CAUGHT_UP and c.idle(RULES)


def test_flush_refreshes_only_caught_up_checkpoints() -> None:
    reading = cursor(iterator="it-1", empty_polls=1, lag_ms=900)
    assert reading.flush(T0, RULES, force=True).save is False and reading.lag_ms == 900
    idle = cursor(iterator="it-1", empty_polls=2, lag_ms=900, last_saved=T0.mono)
    assert idle.flush(at(5), RULES, force=False).save is False
    assert idle.flush(at(5), RULES, force=True).save is True
    assert idle.lag_ms == 0 and idle.caught_up_at == at(5).wall


def test_the_checkpoint_is_what_the_control_table_keeps() -> None:
    c = cursor(sequence_number="104", records=4, lag_ms=0, caught_up_at=5.0)
    c.shard = Shard("s1", "s0")
    assert c.checkpoint() == ShardCheckpoint(
        stream_arn="arn:stream",
        shard_id="s1",
        route="servers",
        parent_shard_id="s0",
        sequence_number="104",
        done=False,
        records=4,
        lag_ms=0,
        caught_up_at=5.0,
    )
    assert ShardCheckpoint.from_json("arn:stream", "s1", c.checkpoint().to_json()) == c.checkpoint()
