"""Cutover and rollback switch the routes' direction (DESIGN.md section 8), on moto: T and O
journaled, REVERSE saved only after the checks passed, the reverse event source mapping
enabled with its time filter, FORWARD after a rollback once the cutover's own drain is
over, and the refusals of routes that cannot replicate in reverse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from unittest import mock

import pytest

from dualwrite.cutover import smoke
from dualwrite.cutover.journal import CUTOVER, ROLLBACK, Journal
from dualwrite.cutover.results import Status
from dualwrite.cutover.reverse_journal import ROLLBACK_LOSES_WRITES
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.switch import CutoverRequest, cutover
from dualwrite.reverse.direction import DEFAULT_MARGIN_S, Direction, Flow, drained
from tests.functional.test_cutover_functions import env_of
from tests.reverse_cutover_world import FORCED, TIMEOUT_S, World, build, migration


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def entries(w: World, action: str) -> list:  # type: ignore[type-arg]
    return [e for e in Journal(w.store).entries() if e.action == action]


def test_cutover_saves_reverse_from_T_with_the_overlap_and_enables_the_reverse_mapping(
    moto: None,
) -> None:
    w = build()
    result = cutover(w.ctx, FORCED)

    assert result.status is Status.DONE
    (entry,) = entries(w, CUTOVER)
    assert entry.checked and entry.repointed_at is not None
    overlap = (entry.repointed_at - entry.at) + TIMEOUT_S  # O: the function's Timeout
    assert w.store.direction("r") == Direction(
        Flow.REVERSE, switched_at=entry.at, overlap_s=overlap, old_drained=False, drain_grace_s=60
    )
    assert entry.reverse is not None and entry.reverse.overlap_s == TIMEOUT_S
    (route,) = entry.reverse.routes
    assert (route.route, route.switched_at, route.overlap_s, route.saved) == (
        "r",
        entry.at,
        overlap,
        True,
    )
    # the reverse mapping: enabled, from T minus the margin, journaled as it was before
    assert w.reverse_uuid is not None
    esm = w.mapping(w.reverse_uuid)
    assert esm["State"] == "Enabled"
    (pattern,) = [json.loads(f["Pattern"]) for f in esm["FilterCriteria"]["Filters"]]
    since = pattern["dynamodb"]["ApproximateCreationDateTime"][0]["numeric"]
    assert since == [">=", int(entry.at - DEFAULT_MARGIN_S)]
    (change,) = entry.reverse.mappings
    assert change.uuid == w.reverse_uuid and change.done and not change.was_enabled
    document = result.to_json()["reverse"]
    assert document["on"] is True and document["routes"][0]["switched_at"] == entry.at
    assert document["routes"][0]["overlap_s"] == overlap


def test_cutover_overlap_seconds_overrides_the_function_timeouts(moto: None) -> None:
    w = build(migration(overlap_seconds=30))
    cutover(w.ctx, FORCED)
    (entry,) = entries(w, CUTOVER)
    assert entry.reverse is not None and entry.reverse.overlap_s == 30
    assert entry.repointed_at is not None
    assert w.store.direction("r").overlap_s == (entry.repointed_at - entry.at) + 30


def test_a_cutover_whose_checks_fail_carries_the_writes_made_meanwhile_back(moto: None) -> None:
    """The functions were re-pointed while the checks ran: what the application wrote to
    the new table then reaches the old one through the automatic rollback's drain."""
    # no event source mappings: in-process moto hands a mapped stream's records to Lambda
    # and GetRecords no longer sees them (the first test here has them)
    w = build(migration(smoke_tests=[{"function": "api", "event": {"a": 1}}]), replicator=False)
    rep = w.replicator()
    during = {"id": {"S": "written-during-the-checks"}, "v": {"N": "1"}}

    def app_writes_then_the_check_fails(*_a: object, **_k: object) -> list[smoke.SmokeResult]:
        w.clients.dynamodb.put_item(TableName="new-t", Item=during)
        return [smoke.SmokeResult("api", False, "boom")]

    with mock.patch.object(smoke.SmokeRunner, "run", side_effect=app_writes_then_the_check_fails):
        result = cutover(w.ctx, FORCED)

    assert result.status is Status.ROLLED_BACK
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    (cut,) = entries(w, CUTOVER)
    (back,) = entries(w, ROLLBACK)
    assert cut.reverse is not None and cut.reverse.complete  # reverse was switched on first
    state = w.store.direction("r")
    assert state.direction is Flow.FORWARD and state.switched_at == back.at
    assert not state.old_drained  # the reverse direction drains what was written meanwhile
    assert w.item("old-t", "written-during-the-checks") is None

    done = rep.apply(w.records("new-t"))

    assert done.routes["r"].reverse_replicated == 1
    assert w.item("old-t", "written-during-the-checks") == during


def test_rollback_switches_forward_once_the_cutover_drained_and_says_reverse_drains(
    moto: None,
) -> None:
    w = build()
    cutover(w.ctx, FORCED)
    before = w.now()
    back = rollback(w.ctx)

    assert back.status is Status.DONE
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    (rb,) = entries(w, ROLLBACK)
    state = w.store.direction("r")
    assert state.direction is Flow.FORWARD and not state.old_drained
    assert state.switched_at == rb.at  # T journaled before the functions went back
    # the cutover's forward drain had to end first: T+O + the Lambda's grace (a mapping
    # reads the source stream) + 1 s, waited for on the fake clock
    assert w.now() >= before and sum(w.clock.slept) > 0
    # E (functions back) came before that wait: the fake clock stands still meanwhile
    assert state.overlap_s == TIMEOUT_S and w.now() > rb.at + TIMEOUT_S + 60
    document = back.to_json()
    assert document["drain_pending"] is True
    assert "dualwrite replicate --until-caught-up" in document["drain"]
    assert document["reverse"]["routes"][0]["direction"] == "forward"
    # the reverse mapping stays enabled: it drains what was written to the new table
    assert w.reverse_uuid is not None and w.mapping(w.reverse_uuid)["State"] == "Enabled"
    again = rollback(w.ctx)
    assert again.already and w.store.direction("r") == state


def test_rollback_names_the_unrepresentable_changes_since_the_cutover(moto: None) -> None:
    w = build()
    w.store.quarantine("r", "unrepresentable: before the cutover", {})
    w.clock.sleep(10)
    cutover(w.ctx, FORCED)
    made = w.store.quarantine("r", "unrepresentable: permissions are not the role's", {})
    w.store.quarantine("r", "cannot map: bad id", {})

    back = rollback(w.ctx)

    assert [q.id for q in back.unrepresentable] == [made]
    assert back.to_json()["unrepresentable"][0]["reason"].startswith("unrepresentable: perm")


def test_a_rollback_with_forward_changes_left_to_apply_stays_pending_until_run_again(
    moto: None,
) -> None:
    w = build(replicator=False)  # the local runner: the stream itself tells
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "late"}})
    cutover(w.ctx, FORCED)

    first = rollback(w.ctx)

    assert first.status is Status.FAILED and first.status.exit_code == 1
    (pending,) = first.pending
    assert "still to apply" in pending and "replicate --until-caught-up" in pending
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}  # the functions went back first
    assert w.store.direction("r").direction is Flow.REVERSE
    (rb,) = entries(w, ROLLBACK)

    w.caught_up("old-t")  # the runner applied it
    w.clock.sleep(100)
    again = rollback(w.ctx)

    assert again.status is Status.DONE and again.already
    state = w.store.direction("r")
    assert state.direction is Flow.FORWARD and state.switched_at == rb.at


def test_a_route_without_an_inverse_refuses_unless_reverse_is_off(moto: None) -> None:
    custom = "tests.unit.sample_mapping:TaggedCopy"
    w = build(migration(custom))
    refused = cutover(w.ctx, CutoverRequest())
    assert refused.status is Status.REFUSED and refused.gate is not None
    assert any("has no inverse" in r for r in refused.gate.reasons)
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}


def test_with_reverse_off_the_gate_and_the_journal_say_a_rollback_loses_writes(
    moto: None,
) -> None:
    off = build(migration("tests.unit.sample_mapping:TaggedCopy", reverse=False))
    done = cutover(off.ctx, FORCED)
    assert done.status is Status.DONE and done.gate is not None
    (check,) = [c for c in done.gate.checks if c.name == "reverse replication"]
    assert check.ok and check.detail == ROLLBACK_LOSES_WRITES
    (entry,) = entries(off, CUTOVER)
    assert entry.reverse is not None and not entry.reverse.reverse
    assert entry.reverse.note == ROLLBACK_LOSES_WRITES
    assert off.store.direction("r") == Direction()


def test_a_cutover_waits_for_the_rollback_drain_of_reverse_then_switches(moto: None) -> None:
    w = build(replicator=False)
    cutover(w.ctx, FORCED)
    w.caught_up("old-t")
    assert rollback(w.ctx).status is Status.DONE
    # the target stream holds only forward's own (echo) writes: nothing to drain
    again = cutover(w.ctx, FORCED)
    assert again.status is Status.DONE
    latest = entries(w, CUTOVER)[-1]
    state = w.store.direction("r")
    assert state.direction is Flow.REVERSE and state.switched_at == latest.at


def test_a_reverse_drain_with_a_real_change_left_refuses_the_next_cutover(moto: None) -> None:
    w = build(replicator=False)
    cutover(w.ctx, FORCED)
    w.clock.sleep(30)
    w.clients.dynamodb.put_item(TableName="new-t", Item={"id": {"S": "new"}, "v": {"N": "2"}})
    w.caught_up("old-t")
    rollback(w.ctx)
    w.clock.sleep(60)

    refused = cutover(w.ctx, CutoverRequest(force=False))

    assert refused.status is Status.REFUSED and refused.gate is not None
    (check,) = [c for c in refused.gate.checks if c.name == "direction"]
    assert not check.ok and "still to apply" in check.detail
    assert not w.store.direction("r").old_drained
    # once the runner drained it (it saves drained), the gate has nothing to say
    state = w.store.direction("r")
    assert w.store.save_direction("r", drained(state), expected=state)
    dry = cutover(w.ctx, CutoverRequest(dry_run=True))
    assert dry.gate is not None
    assert all(c.ok for c in dry.gate.checks if c.name == "direction")


def test_a_failed_function_restore_is_a_failed_result_with_its_json(moto: None) -> None:
    from dualwrite.cutover import repoint

    w = build()
    cutover(w.ctx, FORCED)
    with mock.patch.object(repoint, "_restore", side_effect=RuntimeError("lambda down")):
        failed = rollback(w.ctx)

    assert failed.status is Status.FAILED and failed.status.exit_code == 1
    document = failed.to_json()
    assert document["status"] == "failed" and document["rolled_back"] is False
    assert "lambda down" in document["error"]
    assert rollback(w.ctx).status is Status.DONE  # run again: it finishes


def test_a_corrupt_journal_entry_is_skipped_and_named(moto: None) -> None:
    w = build()
    cutover(w.ctx, FORCED)
    w.store.put("CUTOVER", "0000-garbage#cutover", {"action": "nonsense", "status": 3})

    back = rollback(w.ctx)

    assert back.status is Status.DONE
    assert env_of(w.clients, "api") == {"TABLE": "old-t"}
    assert any(
        "0000-garbage#cutover" in n and "could not be read" in n for n in back.to_json()["notes"]
    )
