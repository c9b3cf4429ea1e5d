"""Kills and pending switches an independent review found between the steps of cutover,
rollback and decommission (each failed before its fix): a re-run finishes the job, a rollback
loses nothing, and decommission does not trust a foreign-write list the replicator has not
caught up with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from dualwrite.aws import tables
from dualwrite.cutover.decommission import run_decommission
from dualwrite.cutover.journal import APPLIED, CUTOVER, ROLLBACK, Journal
from dualwrite.cutover.results import Status
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.switch import CutoverRequest, cutover
from dualwrite.cutover.switch_direction import before_cutover
from dualwrite.reverse.direction import Flow, Side, Verdict, decide, drained
from tests.functional.test_cutover_functions import env_of
from tests.functional.test_cutover_kills import Kill, kill_after, killed
from tests.reverse_cutover_world import FORCED, build, migration


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def _kill_right_after_the_update(w: Any) -> None:
    """The process dies once the function's update has reached AWS, before the journal
    records it (inside the update call, as it returns)."""
    original = w.clients.lambda_.update_function_configuration

    def update(**kw: Any) -> Any:
        original(**kw)
        raise Kill

    with mock.patch.object(w.clients.lambda_, "update_function_configuration", update):
        killed(lambda: cutover(w.ctx, FORCED))


@pytest.mark.parametrize("where", ["after the update call", "inside the update call"])
def test_a_cutover_killed_after_its_last_function_finishes_on_a_re_run(
    moto: None, where: str
) -> None:
    w = build()
    if where == "after the update call":
        revive = kill_after(w.clients.lambda_, "lambda.UpdateFunctionConfiguration")
        killed(lambda: cutover(w.ctx, FORCED))
        revive()
    else:
        _kill_right_after_the_update(w)
    assert env_of(w.clients, "api") == {"TABLE": "new-t"}  # the switch reached AWS
    (entry,) = Journal(w.store).entries()
    assert entry.status != APPLIED  # the kill came before the entry was closed

    again = cutover(w.ctx, FORCED)

    assert again.status is Status.DONE
    assert not again.already_cut_over  # it was not: its checks and switch had not run
    assert w.store.direction("r").direction is Flow.REVERSE
    assert w.mapping(w.reverse_uuid)["State"] == "Enabled"
    (entry,) = Journal(w.store).entries()
    assert entry.status == APPLIED and entry.checked
    assert [f.applied for f in entry.functions] == [True]


def test_a_cutover_killed_after_its_last_function_then_rolled_back_loses_nothing(
    moto: None,
) -> None:
    w = build(replicator=False)
    rep = w.replicator()
    _kill_right_after_the_update(w)
    meanwhile = {"id": {"S": "after-the-kill"}, "v": {"S": "new"}}
    w.clients.dynamodb.put_item(TableName="new-t", Item=meanwhile)

    back = rollback(w.ctx)

    assert back.status is Status.DONE
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    rep.apply(w.records("new-t"))
    rep.apply(w.records("old-t"))
    assert w.item("old-t", "after-the-kill") == meanwhile  # carried back


def test_a_rollback_killed_before_closing_its_entry_switches_forward_on_a_re_run(
    moto: None,
) -> None:
    w = build()
    assert cutover(w.ctx, FORCED).status is Status.DONE
    original = Journal.save

    def save(self: Journal, entry: Any) -> Any:
        if entry.action == ROLLBACK and entry.status == APPLIED:
            raise Kill  # the cutovers are marked rolled back; the entry is not closed
        return original(self, entry)

    with mock.patch.object(Journal, "save", save):
        killed(lambda: rollback(w.ctx))
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    w.clock.sleep(300)

    again = rollback(w.ctx)

    assert again.status is Status.DONE
    assert w.store.direction("r").direction is Flow.FORWARD
    rollbacks = [e for e in Journal(w.store).entries() if e.action == ROLLBACK]
    assert [e.status for e in rollbacks] == [APPLIED]
    assert rollbacks[0].reverse is not None and rollbacks[0].reverse.complete


def test_a_cutover_after_a_rollback_left_pending_finishes_the_switch_back_first(
    moto: None,
) -> None:
    w = build(replicator=False)
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "late"}})
    assert cutover(w.ctx, FORCED).status is Status.DONE
    first = rollback(w.ctx)
    assert first.status is Status.FAILED and first.pending  # forward still to drain
    w.caught_up("old-t")  # the runner applies "late" (the forward drain)
    w.clock.sleep(600)  # the application runs on the old tables

    again = cutover(w.ctx, FORCED)

    assert again.status is Status.DONE
    cut2 = [e for e in Journal(w.store).entries() if e.action == CUTOVER][-1]
    state = w.store.direction("r")
    assert state.direction is Flow.REVERSE
    assert state.switched_at == cut2.at  # the second cutover's switch, not the first's
    assert state.next_at is None
    # a write the application made to the old table while rolled back is no longer held
    assert decide(state, Side.SOURCE, w.now() - 300) is not Verdict.WAIT
    rb = [e for e in Journal(w.store).entries() if e.action == ROLLBACK][-1]
    assert rb.reverse is not None and rb.reverse.complete


def test_a_cutover_refuses_while_a_rollback_still_owes_its_switch_back(moto: None) -> None:
    w = build(replicator=False)
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "late"}})
    assert cutover(w.ctx, FORCED).status is Status.DONE
    assert rollback(w.ctx).pending  # forward still has "late" to apply: left pending

    dry = cutover(w.ctx, CutoverRequest(dry_run=True))

    assert dry.gate is not None and not dry.gate.ok
    failing = [c for c in dry.gate.checks if not c.ok and c.subject == "rollback"]
    assert failing and "run dualwrite rollback again" in failing[0].detail


def test_decommission_refuses_while_the_replicator_has_not_read_the_old_table(
    moto: None,
) -> None:
    w = build(migration(overlap_seconds=0), replicator=False)
    assert cutover(w.ctx, FORCED).status is Status.DONE
    state = w.store.direction("r")
    assert w.store.save_direction("r", drained(state), expected=state)  # forward drained
    # a writer nobody re-pointed; the replicator has not read it yet
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "stray"}, "v": {"S": "x"}})
    w.clock.sleep(8 * 86400)

    refused = run_decommission(w.ctx, yes=True)

    assert refused.status is Status.REFUSED
    assert tables.describe(w.clients.dynamodb, "old-t") is not None
    assert refused.gate is not None
    (writes,) = [c for c in refused.gate.checks if c.name == "writes"]
    assert "has not read every change" in writes.detail
    # once read, the stray write is listed, and the list refuses (until resolved)
    w.replicator().apply(w.records("old-t"))
    w.caught_up("old-t")
    listed = run_decommission(w.ctx, yes=True)
    assert listed.status is Status.REFUSED and listed.gate is not None
    (writes,) = [c for c in listed.gate.checks if c.name == "writes"]
    assert writes.ok  # read to its end now
    assert [w_.key for w_ in w.store.foreign_writes("r", unresolved_only=True)] == [
        {"id": {"S": "stray"}}
    ]


def test_a_cutover_killed_before_journaling_leaves_no_mark_once_run_again(moto: None) -> None:
    """Killed after marking the routes (next_at) and before its entry: nothing was re-pointed.
    A re-run the gate refuses takes the mark back, else the target-stream records it holds
    would wait for a switch that never comes."""
    w = build()
    assert cutover(w.ctx, FORCED).status is Status.DONE
    assert rollback(w.ctx).status is Status.DONE
    assert w.store.direction("r").direction is Flow.FORWARD
    before_cutover(w.ctx, ["r"])  # what the killed run left
    assert w.store.direction("r").next_at is not None

    refused = cutover(w.ctx, CutoverRequest())  # no reconcile here: the gate refuses

    assert refused.status is Status.REFUSED
    state = w.store.direction("r")
    assert state.next_at is None
    assert decide(state, Side.TARGET, w.now()) is not Verdict.WAIT
