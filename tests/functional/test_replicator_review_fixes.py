"""Forward-replication faults an independent review found (each test failed before its
fix): a refused coalesced write, a quarantine marker or entry write failing, a split seen at
the last look, a checkpointed shard that left the stream, a stuck shard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dualwrite.control import ShardCheckpoint
from dualwrite.errors import DualwriteError
from stream_replicator import quarantine as qmod
from stream_replicator.batch import process_records
from tests.functional import test_replicator_handler, test_replicator_runner
from tests.functional.test_replicator_handler import Env, Flaky, server
from tests.functional.test_replicator_runner import Env as RunnerEnv
from tests.functional.test_replicator_runner import (
    FakeShard,
    FakeStreams,
    fake_env,
    only_servers,
    stream_record,
    v,
)

# the two suites' fixtures, by their names here
env = test_replicator_handler.env
base = test_replicator_runner.base


def _bad(r: dict[str, Any]) -> bool:
    # the target refuses an empty "status" (say, a declared target GSI keyed on it; DynamoDB
    # refuses an empty string for an index key attribute, with ValidationException)
    return "PutRequest" in r and r["PutRequest"]["Item"].get("status") == {"S": ""}


def test_a_rejected_coalesced_write_does_not_drop_the_earlier_applied_record(env: Env) -> None:
    ev = env.events
    ev.put("NumServers", server(5, status={"S": "up"}))  # r0
    ev.put("NumServers", server(5, status={"S": ""}), old=server(5, status={"S": "up"}))  # r1

    done = process_records(env.replicator(Flaky(env.clients.dynamodb, reject=_bad)), ev.records)

    assert done.response == {"batchItemFailures": []}
    assert done.result.outcomes == ["applied", "quarantined"]
    # r0 is acknowledged as applied: its effect must be in the target (as one-by-one would)
    item = env.core("SERVER#5", "METADATA")
    assert item is not None and item.get("status") == {"S": "up"}, item


def test_a_rejected_coalesced_write_does_not_drop_an_applied_delete(env: Env) -> None:
    ev = env.events
    env.clients.dynamodb.put_item(
        TableName="CoreTable",
        Item={
            "PK": {"S": "SERVER#6"},
            "SK": {"S": "METADATA"},
            "Type": {"S": "Server"},
            "name": {"S": "old"},
        },
    )
    ev.delete("NumServers", server(6))  # r0: applied, acknowledged
    ev.put("NumServers", server(6, status={"S": ""}))  # r1: refused by the target

    done = process_records(env.replicator(Flaky(env.clients.dynamodb, reject=_bad)), ev.records)

    assert done.result.outcomes == ["applied", "quarantined"]
    assert env.core("SERVER#6", "METADATA") is None, env.core("SERVER#6", "METADATA")


def test_quarantine_is_filed_once_when_the_seen_marker_write_fails(
    env: Env, monkeypatch: Any
) -> None:
    ev = env.events
    ev.put("UserMembershipTable", {"userId": {"S": "u1"}, "serverId": {"S": "s1"}})  # no role
    real_put = env.store.put
    calls = {"n": 0}

    def flaky_put(pk: str, sk: str, *a: Any, **kw: Any) -> Any:
        if pk == qmod.SEEN_PK and calls["n"] == 0:
            calls["n"] += 1
            raise DualwriteError("throttled writing the marker")
        return real_put(pk, sk, *a, **kw)

    monkeypatch.setattr(env.store, "put", flaky_put)
    first = process_records(env.replicator(), ev.records)
    second = process_records(env.replicator(), ev.records)  # the redelivery

    assert [first.result.outcomes, second.result.outcomes] == [["failed"], ["quarantined"]]
    assert len(env.store.quarantined("memberships")) == 1


def test_quarantine_is_filed_by_the_redelivery_when_the_entry_write_fails(
    env: Env, monkeypatch: Any
) -> None:
    """The marker is written first and names the entry: the redelivery writes that entry."""
    ev = env.events
    ev.put("UserMembershipTable", {"userId": {"S": "u1"}, "serverId": {"S": "s1"}})  # no role
    real = env.store.quarantine
    calls = {"n": 0}

    def flaky(*a: Any, **kw: Any) -> Any:
        if calls["n"] == 0:
            calls["n"] += 1
            raise DualwriteError("throttled writing the entry")
        return real(*a, **kw)

    monkeypatch.setattr(env.store, "quarantine", flaky)
    first = process_records(env.replicator(), ev.records)
    second = process_records(env.replicator(), ev.records)  # the redelivery
    third = process_records(env.replicator(), ev.records)  # and once more

    assert [first.result.outcomes, second.result.outcomes] == [["failed"], ["quarantined"]]
    assert third.result.outcomes == ["quarantined"]
    assert len(env.store.quarantined("memberships")) == 1


@dataclass
class SplittingStreams(FakeStreams):
    """The open shard `p` splits (closes, child `c` appears) on the n-th DescribeStream."""

    split_on: int = 2
    child: FakeShard | None = None
    describes: int = 0

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> Any:
        if ExclusiveStartShardId is None:
            self.describes += 1
            if self.describes == self.split_on and self.child is not None:
                self.shards[0].closed = True  # p is closed: its reads end with a null iterator
                self.shards.append(self.child)
        return super().describe_stream(StreamArn, ExclusiveStartShardId)


def test_until_caught_up_does_not_leave_a_just_split_childs_records_unread(base: RunnerEnv) -> None:
    parent = FakeShard("p", None, [stream_record("INSERT", "k1", v={"S": "1"})])
    child = FakeShard("c", "p", [stream_record("MODIFY", "k1", v={"S": "2"})])
    fake = fake_env(base, [parent], page_size=10)
    fake = SplittingStreams(fake.arn, fake.shards, page_size=10, child=child)
    base.migration = only_servers(base.migration)

    summary = base.runner(streams=fake).run(until_caught_up=True)

    # it looks once more before leaving because of splits: the child is read too
    assert summary.caught_up is True
    assert v(base, "k1") == "2"


def test_checkpointed_shard_that_left_the_stream_is_reported(base: RunnerEnv) -> None:
    # the runner was down > 24 h: parent p (checkpointed mid-way, not done) was trimmed out of
    # the stream; only its child is listed. p's records after the checkpoint are gone.
    child = FakeShard("c", "p", [stream_record("INSERT", "k9")])
    fake = fake_env(base, [child])
    base.migration = only_servers(base.migration)
    base.store.save_shard(
        ShardCheckpoint(fake.arn, "p", route="servers", sequence_number="42", done=False)
    )

    summary = base.runner(streams=fake).run(until_caught_up=True)

    assert summary.records == 1
    # the loss of p's unread records is said loudly, as for a trimmed checkpoint
    assert summary.trimmed_shards == ["servers:p"]
    assert any("shard p" in n and "reconcile --repair" in n for n in base.notes)
    # said once: the next run has nothing more to say about p
    assert base.runner(streams=fake).run(until_caught_up=True).trimmed_shards == []
