"""A cutover after a rollback (DESIGN.md section 8), on Docker-less moto. After a rollback the
target's stream is still read (reverse's event source mapping stays on, the local runner
keeps its shards), so while a second cutover re-points the functions and runs its checks,
before it saves REVERSE, the application's writes to the new tables are already being
delivered. They must wait for that switch (Direction.next_at), not be acknowledged as the
old direction's: acknowledged, nothing would read them again and a later rollback would
lose them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from dualwrite.cutover.functions import ApplyError
from dualwrite.cutover.gate import Check
from dualwrite.cutover.results import Status
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.switch import Switched, cutover
from dualwrite.reverse.direction import Flow, drained
from stream_replicator.results import HELD, Outcome
from tests.reverse_cutover_world import FORCED, World, build, migration


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def drain(w: World) -> None:
    """The old direction's drain, marked as a replicator marks it (moto stamps records with
    the real time and the world's clock is fake, so the clock stays put)."""
    state = w.store.direction("r")
    assert w.store.save_direction("r", drained(state), expected=state)


def rolled_back_once(w: World) -> None:
    assert cutover(w.ctx, FORCED).status is Status.DONE
    drain(w)
    assert rollback(w.ctx).status is Status.DONE
    drain(w)
    state = w.store.direction("r")
    assert state.direction is Flow.FORWARD and state.switched_at is not None


def outcome_of(w: World, rep: Any, table: str, key: str) -> Outcome:
    records = w.records(table)
    (i,) = [n for n, r in enumerate(records) if r["dynamodb"]["Keys"]["id"] == {"S": key}]
    outcome: Outcome = rep.apply(records).outcomes[i]
    return outcome


def test_new_table_writes_made_while_a_second_cutovers_checks_run_reach_the_old_table(
    moto: None,
) -> None:
    w = build(migration(overlap_seconds=0), replicator=False)
    rolled_back_once(w)
    rep = w.replicator()
    during = {"id": {"S": "during-checks"}, "v": {"S": "written by the re-pointed app"}}
    seen: dict[str, Any] = {}

    def app_writes_while_checks_run(_switched: Switched, /) -> list[Check]:
        w.clients.dynamodb.put_item(TableName="new-t", Item=during)
        seen["state"] = w.store.direction("r")
        seen["outcome"] = outcome_of(w, rep, "new-t", "during-checks")
        return []

    second = cutover(w.ctx, FORCED, post_switch=[app_writes_while_checks_run])

    assert second.status is Status.DONE
    assert seen["outcome"] is HELD  # not acknowledged: the stream keeps it
    # the checks ran before the switch: forward still, with the switch being made
    assert seen["state"].direction is Flow.FORWARD and seen["state"].next_at is not None
    state = w.store.direction("r")
    assert state.direction is Flow.REVERSE and state.next_at is None
    assert w.item("old-t", "during-checks") is None
    drain(w)
    rep.apply(w.records("new-t"))
    assert w.item("old-t", "during-checks") == during


def test_a_second_cutover_that_re_points_nothing_takes_its_mark_back(moto: None) -> None:
    w = build(migration(overlap_seconds=0), replicator=False)
    rolled_back_once(w)
    before = w.store.direction("r")
    with mock.patch(
        "dualwrite.cutover.switch.run_cutover", side_effect=ApplyError("throttled", ["api"], [])
    ):
        failed = cutover(w.ctx, FORCED)
    assert failed.status is Status.FAILED
    assert w.store.direction("r") == before  # forward as it was, no switch being made
