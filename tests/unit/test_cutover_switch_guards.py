"""The safeguards as steps of the cutover (switch_guards) and what the results say of them:
the watched alarms' gate checks, the watch's polling, a rolled back cutover's reason and
what it put back, and the keys rollback --json adds."""

from __future__ import annotations

from dualwrite.cutover.alarms import AlarmClone
from dualwrite.cutover.gate import Check, Decision
from dualwrite.cutover.journal import APPLIED, CUTOVER, ROLLBACK, Entry
from dualwrite.cutover.repoint import RollbackOutcome
from dualwrite.cutover.results import CutoverResult, RollbackResult, Status
from dualwrite.cutover.safeguards import AfterSwitch, PreCheck, Undone
from dualwrite.cutover.smoke import SmokeResult
from dualwrite.cutover.ssm import ParameterChange
from dualwrite.cutover.switch_guards import after_checks, alarm_checks, poll_seconds

CHANGE = ParameterChange("/app/table", "orders", "orders-v2")
CLONE = AlarmClone("orders-throttles", "orders-v2-throttles", True)
CUT = Entry("2026-01-01T00:00:00.000000Z#cutover", CUTOVER, 1.0, APPLIED, reason="forced")
BACK = Entry("2026-01-01T00:01:00.000000Z#rollback", ROLLBACK, 2.0, APPLIED)


def test_watched_alarms_are_gate_checks() -> None:
    pre = PreCheck((), (), {"b-errors": "ALARM", "a-latency": "OK"})
    checks = alarm_checks(pre)
    assert [c.ok for c in checks] == [True, False]
    assert Decision(checks).reasons == [
        "alarm b-errors: already in ALARM (watched by cutover.watch_alarms)"
    ]
    assert alarm_checks(PreCheck((), ())) == ()


def test_the_watch_polls_at_most_every_30_s_and_at_least_every_second() -> None:
    assert [poll_seconds(s) for s in (0, 5, 100, 600, 86400)] == [1.0, 1.0, 5.0, 30.0, 30.0]


def test_after_checks_name_each_smoke_test_and_a_failed_step() -> None:
    after = AfterSwitch(
        smoke=(SmokeResult("api", True, ""), SmokeResult("batch", False, "function error (x)")),
        error="cloning alarms failed: denied",
    )
    assert after_checks(after) == (
        Check("smoke test", "api", True, "passed"),
        Check("smoke test", "batch", False, "function error (x)"),
        Check("post-switch", "safeguards", False, "cloning alarms failed: denied"),
    )


def test_a_rolled_back_cutover_says_why_and_what_was_put_back() -> None:
    after = AfterSwitch((CHANGE,), (CLONE,), (SmokeResult("api", False, "expect not met"),))
    outcome = RollbackOutcome(undone=(CUT,), entry=BACK, safeguards=Undone((CHANGE,), (CLONE,)))
    result = CutoverResult(
        Status.ROLLED_BACK,
        gate=Decision(()),
        entry=CUT,
        reason="forced",
        safeguards=after,
        post_switch=after_checks(after),
        rollback=outcome,
    )
    data = result.to_json()
    assert data["status"] == "rolled_back" and data["cut_over"] is False
    assert data["reason"] == data["failure"] == "smoke test of api failed: expect not met"
    assert data["forced_reason"] == "forced"
    assert data["parameters"] == [CHANGE.to_json()]
    assert data["alarm_clones"] == [CLONE.to_json()]
    assert data["undone"]["parameters"] == [CHANGE.to_json()] and data["undone"]["failed"] == []
    assert data["rolled_back"] is True and data["rollback_journal"] == BACK.sk
    assert "references" not in data  # only a dry run looks for them


def test_a_dry_run_lists_planned_parameters_and_references() -> None:
    result = CutoverResult(
        Status.DONE, dry_run=True, gate=Decision(()), precheck=PreCheck((), (CHANGE,))
    )
    data = result.to_json()
    assert data["parameters"] == [CHANGE.to_json()]
    assert data["references"] == [] and data["references_skipped"] == []


def test_rollback_json_lists_restored_parameters_and_deleted_clones() -> None:
    outcome = RollbackOutcome(
        undone=(CUT,), entry=BACK, safeguards=Undone((CHANGE,), (CLONE,), (), ("/x (denied)",))
    )
    data = RollbackResult(Status.FAILED, outcome).to_json()
    assert data["status"] == "failed" and Status.FAILED.exit_code == 1
    assert data["parameters"] == [CHANGE.to_json()]
    assert data["alarm_clones"] == [CLONE.to_json()]
    assert data["not_put_back"] == ["/x (denied)"]


def test_the_journal_keeps_parameters_and_clones() -> None:
    entry = Entry(CUT.sk, CUTOVER, 1.0, APPLIED, parameters=(CHANGE,), alarm_clones=(CLONE,))
    again = Entry.from_json(entry.sk, entry.to_json())
    assert again == entry and again.extra == {}
