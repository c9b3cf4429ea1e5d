"""The local runner's drain and empty GetRecords pages (DESIGN.md section 8): an open
shard counts as read to its end only after RunnerSettings.idle_polls empty pages in a row,
and a change the stream serves after the drain was marked anyway is quarantined as late,
never skipped unseen."""

from __future__ import annotations

import time
from typing import Any

from dualwrite.reverse.direction import Flow
from tests.functional.test_replicator_reverse_runner import NEW, OLD, customer, identity
from tests.reverse_world import World

__all__ = ["identity"]  # the fixture


class EmptyPagesFirst:
    """The real (moto) streams client, except that the old table's stream answers its first
    `pages` GetRecords with an empty page (AWS: "If there are no stream records available in
    the portion of the shard that the iterator points to, GetRecords returns an empty list.
    Note that it might take multiple calls to get to a portion of the shard that contains
    stream records.")."""

    def __init__(self, real: Any, table: str, pages: int) -> None:
        self.real, self.table, self.pages = real, table, pages
        self.ours: set[str] = set()

    def get_shard_iterator(self, **kw: Any) -> Any:
        out = self.real.get_shard_iterator(**kw)
        if f"table/{self.table}/" in kw["StreamArn"]:
            self.ours.add(out["ShardIterator"])
        return out

    def get_records(self, ShardIterator: str, **kw: Any) -> Any:
        if ShardIterator in self.ours and self.pages:
            self.pages -= 1
            return {"Records": [], "NextShardIterator": ShardIterator}
        out = self.real.get_records(ShardIterator=ShardIterator, **kw)
        if ShardIterator in self.ours and out.get("NextShardIterator"):
            self.ours.add(out["NextShardIterator"])
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _overlap_write(w: World) -> None:
    w.switch("customers", Flow.REVERSE, time.time(), overlap_s=30.0)
    w.ddb.put_item(TableName=OLD, Item=customer(50, plan="in-the-overlap"))  # before T+O


def test_empty_pages_before_an_overlap_write_do_not_end_the_drain(identity: World) -> None:
    """An invocation still on the old environment writes the old table inside the overlap;
    GetRecords answers three empty pages before it. Two empty pages were taken for the
    shard's end: the drain was marked with the write unread, which was then skipped as
    "applied by the drain" and never reached the new table."""
    w = identity
    _overlap_write(w)
    # the runner's clock is past T+O (plus the slack): the drain may complete in this run
    summary = w.runner(60.0, streams=EmptyPagesFirst(w.clients.streams, OLD, pages=3)).run(
        until_caught_up=True
    )
    assert summary.caught_up and summary.drained_routes == ["customers"]
    assert "c50" in str(sorted(w.scan(NEW)))


def test_a_change_served_after_the_drain_was_marked_is_quarantined_not_skipped(
    identity: World,
) -> None:
    """More empty pages than idle_polls: the drain is marked before the write is read. Read
    later, it is quarantined as late (listed, blocking nothing silently), not skipped."""
    w = identity
    _overlap_write(w)
    first = w.runner(60.0, streams=EmptyPagesFirst(w.clients.streams, OLD, pages=50)).run(
        until_caught_up=True
    )
    assert first.drained_routes == ["customers"]
    assert "c50" not in str(sorted(w.scan(NEW)))  # the write not read yet
    again = w.runner(60.0).run(until_caught_up=True)
    assert again.caught_up and again.skipped == 0 and again.quarantined == 1
    (entry,) = w.store.quarantined("customers")
    assert entry.reason.startswith("late: a forward record made before the switch to reverse")
