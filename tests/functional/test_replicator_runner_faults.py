"""The local stream runner under faults: throttled and 5xx streams calls are retried (not a
reason to give a shard up, nor fatal), a runner whose lease passed to another applies no
batch more, and empty pages before a shard's records are not its end (DESIGN.md sections
2, 7 and 8)."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite.errors import DualwriteError
from stream_replicator import lease
from stream_replicator.runner_settings import Clock
from tests.functional.test_replicator_runner import (
    Env,
    FakeShard,
    FakeStreams,
    base,
    client_error,
    env,
    fake_env,
    flaky_replicator,
    mark_backfilled,
    only_servers,
    stream_record,
    v,
)

__all__ = ["base", "env"]  # the fixtures


class ThrottleFirst(FakeStreams):
    """GetRecords is throttled (LimitExceededException) the first `throttles` times."""

    throttles: int = 0

    def get_records(self, ShardIterator: str, Limit: int) -> Any:
        if self.throttles:
            self.throttles -= 1
            raise client_error("LimitExceededException", "GetRecords")
        return super().get_records(ShardIterator, Limit)


def test_throttled_reads_do_not_count_as_failed_batches(base: Env) -> None:
    """Seven throttled GetRecords ("slow down") and then one failed batch: the record
    is retried and the run catches up. Throttles counted as failed batches, so the shard
    was given up (STUCK) after that single failure and the command exited 1."""
    records = [stream_record("INSERT", f"k{i}", v={"S": str(i)}) for i in range(3)]
    fake = fake_env(base, [FakeShard("s", None, records)])
    fake.__class__ = ThrottleFirst
    fake.throttles = 7
    base.migration = only_servers(base.migration)
    rep = flaky_replicator(base, "SERVER#k1", times=1)

    summary = base.runner(streams=fake, replicator=rep).run(until_caught_up=True)

    assert summary.stuck_shards == []  # given up after a single failed batch
    assert summary.caught_up is True
    assert summary.failed == 1 and summary.records == 3
    assert [v(base, f"k{i}") for i in range(3)] == ["0", "1", "2"]


@pytest.mark.parametrize("clocks", ["stall", "suspend"])
def test_a_runner_whose_lease_was_taken_over_mid_batch_writes_no_more(
    env: Env, clocks: str
) -> None:
    """A runner that stalled past the lease TTL mid-batch, while another took the lease,
    applies no batch more: it renews the lease before each batch, on the wall clock the
    others judge it by. It went on to apply a batch of every other ready shard ("stall"),
    or, after a laptop's sleep (wall clock past the TTL, monotonic clock not: "suspend"),
    every remaining batch without noticing."""
    mark_backfilled(env.store, "servers", "memberships")
    t = [env.store.now(), 1000.0]
    runner = env.runner(batch_size=5)
    runner.clock = Clock(wall=lambda: t[0], mono=lambda: t[1])
    rep = runner.replicator
    real_apply = rep.apply
    seen: list[str] = []

    def apply(records: Any, remaining: Any = None) -> Any:
        seen.append(records[0]["eventSourceARN"])
        out = real_apply(records, remaining)
        if len(seen) == 1:
            # this batch stalled past the lease's TTL; another runner took the lease over
            t[0] += lease.TTL_S + 5
            if clocks == "stall":
                t[1] += lease.TTL_S + 5
            assert lease.acquire(env.store, "newcomer:2:y", t[0]) is None
        return out

    rep.apply = apply  # type: ignore[method-assign]

    raised: DualwriteError | None = None
    try:
        runner.run(until_caught_up=True)
    except DualwriteError as exc:
        raised = exc

    assert len(seen) == 1, f"{len(seen) - 1} more batch(es) applied after losing the lease"
    assert raised is not None and "lease passed to newcomer" in str(raised)


class FailOnce(FakeStreams):
    """One call of `operation` answers `code` (what boto3 raises once its own retries are
    spent), then every call works."""

    operation: str = ""
    code: str = ""

    def _maybe_fail(self, operation: str) -> None:
        if self.operation == operation:
            self.operation = ""
            raise client_error(self.code, operation)

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        self._maybe_fail("GetShardIterator")
        return super().get_shard_iterator(**kwargs)

    def get_records(self, ShardIterator: str, Limit: int) -> Any:
        self._maybe_fail("GetRecords")
        return super().get_records(ShardIterator, Limit)


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("GetShardIterator", "LimitExceededException"),
        ("GetRecords", "InternalServerError"),
    ],
)
def test_a_throttled_or_5xx_streams_call_is_retried_not_fatal(
    base: Env, operation: str, code: str
) -> None:
    """A throttled GetShardIterator, or a 500 on GetRecords (what boto3 raises once its
    own retries are spent), is retried later with backoff. It escaped run() and ended the
    replicator for every route."""
    records = [stream_record("INSERT", f"k{i}", v={"S": str(i)}) for i in range(3)]
    fake = fake_env(base, [FakeShard("s", None, records)])
    fake.__class__ = FailOnce
    fake.operation, fake.code = operation, code
    base.migration = only_servers(base.migration)

    summary = base.runner(streams=fake).run(until_caught_up=True)

    assert summary.caught_up is True and summary.records == 3
    assert [v(base, f"k{i}") for i in range(3)] == ["0", "1", "2"]


class SparseStreams(FakeStreams):
    """A shard whose records start after a stretch with nothing in it (None entries): as the
    GetRecords reference says, "If there are no stream records available in the portion of
    the shard that the iterator points to, GetRecords returns an empty list. Note that it
    might take multiple calls to get to a portion of the shard that contains stream
    records." (e.g. an open shard read from TRIM_HORIZON after its head was trimmed)."""

    def get_shard_iterator(
        self,
        StreamArn: str,
        ShardId: str,
        ShardIteratorType: str,
        SequenceNumber: str | None = None,
    ) -> Any:
        self.iterator_calls.append((ShardId, ShardIteratorType, SequenceNumber))
        shard = self._shard(ShardId)
        if ShardIteratorType == "TRIM_HORIZON":
            return {"ShardIterator": f"{ShardId}|0"}
        seqs = [r["dynamodb"]["SequenceNumber"] if r else None for r in shard.records]
        return {"ShardIterator": f"{ShardId}|{seqs.index(SequenceNumber) + 1}"}

    def get_records(self, ShardIterator: str, Limit: int) -> Any:
        shard_id, pos_text = ShardIterator.split("|")
        shard = self._shard(shard_id)
        pos = int(pos_text)
        if pos < len(shard.records) and shard.records[pos] is None:
            return {"Records": [], "NextShardIterator": f"{shard_id}|{pos + 1}"}
        batch: list[dict[str, Any]] = []
        while pos < len(shard.records) and len(batch) < Limit and shard.records[pos]:
            batch.append(shard.records[pos])
            pos += 1
        return {"Records": batch, "NextShardIterator": f"{shard_id}|{pos}"}


def test_until_caught_up_is_not_fooled_by_empty_pages_before_the_records(base: Env) -> None:
    """Two empty GetRecords pages before an open shard's records (its API reference: "it
    might take multiple calls to get to a portion of the shard that contains stream
    records") are not its end: the run reads the records. It said caught_up with none
    read, lag 0 in the checkpoint."""
    records = [stream_record("INSERT", f"k{i}", v={"S": str(i)}) for i in range(3)]
    fake = fake_env(base, [FakeShard("s", None, [None, None, *records])])  # type: ignore[list-item]
    fake.__class__ = SparseStreams
    base.migration = only_servers(base.migration)

    summary = base.runner(streams=fake).run(until_caught_up=True)

    assert summary.caught_up is True
    assert summary.records == 3, "caught_up claimed with the shard's records unread"
    assert [v(base, f"k{i}") for i in range(3)] == ["0", "1", "2"]
