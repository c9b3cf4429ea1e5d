"""The typed results of cutover, rollback and decommission: their --json objects (the keys the
commands printed before they were typed, plus "status") and their exit codes."""

from __future__ import annotations

from dualwrite.control import iso
from dualwrite.cutover.functions import FunctionChange, VariableChange
from dualwrite.cutover.gate import Check, Decision
from dualwrite.cutover.journal import APPLIED, CUTOVER, ROLLBACK, Entry, FunctionEntry
from dualwrite.cutover.repoint import Restored, RollbackOutcome
from dualwrite.cutover.results import (
    ApplyFailure,
    CutoverResult,
    DecommissionResult,
    Removed,
    RollbackResult,
    Status,
    journaled_changes,
)

PASSED = Decision((Check("reconcile", "r", True, "parity, 1.0 min ago"),))
REFUSED = Decision((Check("reconcile", "r", False, "no reconcile recorded"),))
PLAN = FunctionChange(
    "api",
    "arn:role",
    {"T": "old", "X": "1"},
    {"T": "new", "X": "1"},
    (VariableChange("api", "T", "old", "new"),),
)
ENTRY = Entry(
    sk="2026-01-01T00:00:00.000000Z#cutover",
    action=CUTOVER,
    at=1767225600.0,
    status=APPLIED,
    functions=(
        # the journal holds what was read right before the update: X had changed meanwhile
        FunctionEntry("api", {"T": "old", "X": "2"}, {"T": "new", "X": "2"}, ("T",), True),
        FunctionEntry("idle", {}, {}, (), False),
    ),
    reason="forced for a test",
    forced=True,
)


def test_exit_codes() -> None:
    assert [s.exit_code for s in Status] == [0, 4, 4, 1]
    assert [str(s) for s in Status] == ["done", "refused", "rolled_back", "failed"]


def test_refused_cutover_json() -> None:
    result = CutoverResult(Status.REFUSED, gate=REFUSED, plans=(PLAN,), functions_checked=3)
    data = result.to_json()
    assert list(data)[:3] == ["status", "refused", "gate"]
    assert data["status"] == "refused" and data["refused"] is True
    assert data["gate"]["reasons"] == ["r: no reconcile recorded"]
    assert data["cut_over"] is False and data["dry_run"] is False
    assert data["functions"] == ["api"] and data["functions_checked"] == 3
    assert data["changes"] == [{"function": "api", "variable": "T", "old": "old", "new": "new"}]
    assert "at" not in data and "journal" not in data
    assert not result.forced_past_gate


def test_done_cutover_shows_what_the_journal_says_changed() -> None:
    result = CutoverResult(
        Status.DONE, gate=REFUSED, plans=(PLAN,), entry=ENTRY, observation_days=7
    )
    data = result.to_json()
    assert data["status"] == "done" and data["cut_over"] is True
    assert data["functions"] == ["api"]  # "idle" was journaled but not applied
    assert journaled_changes(ENTRY) == (VariableChange("api", "T", "old", "new"),)
    assert (data["at"], data["journal"], data["forced"], data["reason"]) == (
        iso(ENTRY.at),
        ENTRY.sk,
        True,
        "forced for a test",
    )
    assert data["observation_days"] == 7
    assert "refused" not in data and "error" not in data and "post_switch" not in data
    assert result.forced_past_gate


def test_failed_cutover_names_what_was_put_back() -> None:
    failure = ApplyFailure("updating function b failed", ("a",), ("c (boom)",))
    data = CutoverResult(Status.FAILED, gate=PASSED, plans=(PLAN,), failure=failure).to_json()
    assert data["status"] == "failed" and data["cut_over"] is False
    assert (data["error"], data["put_back"], data["not_put_back"]) == (
        "updating function b failed",
        ["a"],
        ["c (boom)"],
    )


def test_rolled_back_cutover_carries_the_checks_and_the_rollback() -> None:
    undo = Entry("2026-01-01T00:01:00.000000Z#rollback", ROLLBACK, ENTRY.at + 60, APPLIED)
    result = CutoverResult(
        Status.ROLLED_BACK,
        gate=PASSED,
        plans=(PLAN,),
        entry=ENTRY,
        post_switch=(Check("smoke", "api", False, "statusCode 500"),),
        rollback=RollbackOutcome(undone=(ENTRY,), entry=undo),
    )
    data = result.to_json()
    assert data["status"] == "rolled_back" and data["cut_over"] is False
    assert data["rolled_back"] is True and data["rollback_journal"] == undo.sk
    assert data["post_switch"][0]["ok"] is False
    assert data["journal"] == ENTRY.sk


def test_rollback_json() -> None:
    outcome = RollbackOutcome(
        undone=(ENTRY,),
        restored=(Restored("api", ("T",)),),
        notes=("function api: X changed",),
        entry=Entry("2026-01-02T00:00:00.000000Z#rollback", ROLLBACK, 1.0, APPLIED),
    )
    assert RollbackResult(Status.DONE, outcome).to_json() == {
        "status": "done",
        "rolled_back": True,
        "already_rolled_back": False,
        "cutovers": [ENTRY.sk],
        "functions": ["api", "idle"],
        "restored": [{"function": "api", "variables": ["T"]}],
        "parameters": [],
        "alarm_clones": [],
        "not_put_back": [],
        "notes": ["function api: X changed"],
        "journal": "2026-01-02T00:00:00.000000Z#rollback",
        "reverse": None,
        "drain_pending": False,
        "drain": None,
        "draining": [],
        "switch_pending": [],
        "unrepresentable": [],
    }
    already = RollbackResult(Status.DONE, RollbackOutcome(already=True)).to_json()
    assert already["already_rolled_back"] is True and already["rolled_back"] is False


def test_decommission_json() -> None:
    removed = (Removed("old-a", "arn:b1", True), Removed("old-b", "arn:b2", False))
    done = DecommissionResult(Status.DONE, ("old-c",), PASSED, removed, ("esm x",)).to_json()
    assert done == {
        "status": "done",
        "decommissioned": ["old-a", "old-b"],
        "already_gone": ["old-c"],
        "backups": {"old-a": "arn:b1", "old-b": "arn:b2"},
        "deletion_protection_disabled": ["old-a"],
        "warnings": ["esm x"],
        "gate": PASSED.to_json(),
    }
    refused = DecommissionResult(Status.REFUSED, gate=REFUSED).to_json()
    assert list(refused)[:3] == ["status", "refused", "gate"] and refused["decommissioned"] == []
