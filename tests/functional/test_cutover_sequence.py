"""The cutover sequence in the core (cutover.switch), on in-process moto: the no-op re-run,
the refusal, the post-switch checks (a failing or crashing one rolls every change back),
rollback's refusals and decommission's no-op, each as a typed result with its --json status."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.control import ControlStore, control_table_definition
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.decommission import DecommissionRecord, run_decommission
from dualwrite.cutover.gate import Check
from dualwrite.cutover.journal import APPLIED, CUTOVER, ROLLBACK, Journal
from dualwrite.cutover.results import Status
from dualwrite.cutover.rollback import rollback
from dualwrite.cutover.switch import CutoverRequest, Switched, cutover
from dualwrite.errors import ConfigError
from tests.functional.test_cutover_facts import MIGRATION, make_table
from tests.functional.test_cutover_functions import env_of, make_functions

FORCED = CutoverRequest(force=True, reason="test: no reconcile here")


@pytest.fixture
def ctx(moto_clients: Clients) -> CutoverContext:
    make_table(moto_clients, "old-t")
    make_table(moto_clients, "new-t")
    make_functions(moto_clients, {"api": {"TABLE": "old-t", "OTHER": "old-t-logs"}})
    tables.create_table(moto_clients.dynamodb, control_table_definition("ctl"))
    return CutoverContext.open(MIGRATION, moto_clients)


def journal_of(ctx: CutoverContext) -> list[tuple[str, str]]:
    assert ctx.store is not None
    return [(e.action, e.status) for e in Journal(ctx.store).entries()]


def test_force_needs_a_reason() -> None:
    with pytest.raises(ConfigError, match="--reason"):
        CutoverRequest(force=True, reason="  ")


def test_refused_gate_changes_nothing_and_says_refused(ctx: CutoverContext) -> None:
    result = cutover(ctx, CutoverRequest())
    assert result.status is Status.REFUSED and result.status.exit_code == 4
    data = result.to_json()
    assert data["status"] == "refused" and data["refused"] is True
    assert any("no reconcile recorded" in r for r in data["gate"]["reasons"])
    assert data["changes"] == [
        {"function": "api", "variable": "TABLE", "old": "old-t", "new": "new-t"}
    ]
    assert env_of(ctx.clients, "api")["TABLE"] == "old-t"
    assert journal_of(ctx) == []


def test_passing_post_switch_check_sees_the_switch_and_the_cutover_is_done(
    ctx: CutoverContext,
) -> None:
    seen: list[Switched] = []

    def smoke(switched: Switched) -> Sequence[Check]:
        seen.append(switched)
        env = env_of(switched.context.clients, "api")
        return [Check("smoke", "api", env["TABLE"] == "new-t", env["TABLE"])]

    result = cutover(ctx, FORCED, post_switch=[smoke])
    assert result.status is Status.DONE and result.cut_over
    assert [s.entry.sk for s in seen] == [result.entry.sk if result.entry else None]
    assert env_of(ctx.clients, "api") == {"TABLE": "new-t", "OTHER": "old-t-logs"}
    data = result.to_json()
    assert data["status"] == "done" and data["cut_over"] is True
    assert data["post_switch"] == [
        {"check": "smoke", "subject": "api", "ok": True, "detail": "new-t"}
    ]
    assert data["forced"] is True and data["reason"] == FORCED.reason
    assert journal_of(ctx) == [(CUTOVER, APPLIED)]

    # nothing left to re-point: a re-run is a no-op, whatever the gate says
    again = cutover(ctx, CutoverRequest())
    assert again.status is Status.DONE and again.already_cut_over
    assert again.to_json() == {
        "status": "done",
        "dry_run": False,
        "cut_over": False,
        "already_cut_over": True,
        "functions": [],
        "functions_checked": 1,
        "changes": [],
    }


def test_failing_post_switch_check_rolls_every_change_back(ctx: CutoverContext) -> None:
    def smoke(_switched: Switched) -> Sequence[Check]:
        return [Check("smoke", "api", False, "statusCode 500")]

    result = cutover(ctx, FORCED, post_switch=[smoke])
    assert result.status is Status.ROLLED_BACK and result.status.exit_code == 4
    assert env_of(ctx.clients, "api") == {"TABLE": "old-t", "OTHER": "old-t-logs"}
    data = result.to_json()
    assert data["status"] == "rolled_back" and data["cut_over"] is False
    assert data["rolled_back"] is True and data["rollback_journal"]
    assert journal_of(ctx) == [(CUTOVER, APPLIED), (ROLLBACK, APPLIED)]


def test_a_check_that_raises_counts_as_failed(ctx: CutoverContext) -> None:
    def broken(_switched: Switched) -> Sequence[Check]:
        raise RuntimeError("invoke timed out")

    result = cutover(ctx, FORCED, post_switch=[broken])
    assert result.status is Status.ROLLED_BACK
    (check,) = result.post_switch
    assert not check.ok and "invoke timed out" in check.detail and check.subject == "broken"
    assert env_of(ctx.clients, "api")["TABLE"] == "old-t"


def test_dry_run_runs_no_check_and_changes_nothing(ctx: CutoverContext) -> None:
    def never(_switched: Switched) -> Sequence[Check]:
        raise AssertionError("a dry run must not run post-switch checks")

    result = cutover(ctx, CutoverRequest(dry_run=True), post_switch=[never])
    assert result.status is Status.DONE and result.dry_run and not result.cut_over
    assert result.to_json()["gate"]["ok"] is False
    assert result.to_json()["would_cut_over"] is False  # the gate refuses
    forced = cutover(ctx, CutoverRequest(dry_run=True, force=True, reason="test"))
    assert forced.to_json()["would_cut_over"] is True  # --force would go past it
    assert env_of(ctx.clients, "api")["TABLE"] == "old-t"
    assert journal_of(ctx) == []


def test_rollback_refusals_are_typed(moto_clients: Clients, ctx: CutoverContext) -> None:
    nothing = rollback(ctx)
    assert nothing.status is Status.REFUSED and "no cutover is recorded" in (nothing.refusal or "")
    assert nothing.to_json() == {
        "status": "refused",
        "refused": True,
        "reason": nothing.refusal,
    }

    assert cutover(ctx, FORCED).cut_over
    assert ctx.store is not None
    record = DecommissionRecord("old-t", "arn:backup", "2026-01-01T00:00:00Z", False, "x")
    ctx.store.put("DECOMMISSION", "old-t", record.to_json())
    moto_clients.dynamodb.delete_table(TableName="old-t")
    after = rollback(ctx)
    assert after.status is Status.REFUSED and "old-t were decommissioned" in (after.refusal or "")
    assert env_of(ctx.clients, "api")["TABLE"] == "new-t"


def test_rollback_and_decommission_without_a_control_table(moto_clients: Clients) -> None:
    make_table(moto_clients, "old-t")
    bare = CutoverContext.open(MIGRATION, moto_clients)
    assert bare.store is None
    assert "no control table" in (rollback(bare).refusal or "")
    assert run_decommission(bare, yes=False).to_json()["status"] == "refused"
    refused = cutover(bare, FORCED)
    assert refused.status is Status.REFUSED and "no journal" in (refused.refusal or "")


def test_decommission_with_every_table_gone_is_a_no_op(moto_clients: Clients) -> None:
    tables.create_table(moto_clients.dynamodb, control_table_definition("ctl"))
    result = run_decommission(CutoverContext.open(MIGRATION, moto_clients), yes=False)
    assert result.to_json() == {
        "status": "done",
        "decommissioned": [],
        "already_gone": ["old-t"],
        "backups": {},
        "deletion_protection_disabled": [],
        "warnings": [],
    }
    assert ControlStore(moto_clients.dynamodb, "ctl").get("DECOMMISSION", "old-t") is None


def test_a_configured_gate_check_refuses_before_anything_changes(
    ctx: CutoverContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dualwrite.cutover import switch

    alarm = Check("watch alarm", "api-errors", False, "already in ALARM")
    monkeypatch.setattr(switch, "configured_gate_checks", lambda _ctx, _plan, _pre: (alarm,))
    result = cutover(ctx, CutoverRequest())
    assert result.status is Status.REFUSED and result.gate is not None
    assert "api-errors: already in ALARM" in result.gate.reasons
    forced = cutover(ctx, FORCED)  # --force goes past it like past any gate check
    assert forced.cut_over and forced.to_json()["gate"]["checks"][-1]["check"] == "watch alarm"
