"""Gate decisions from facts: cutover (reconcile, replication, quarantine) and decommission
(observation window, functions, writes, deletion protection); the journal queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dualwrite.cli.cmd_cutover import clock_from
from dualwrite.control import Phase, ReconcileRecord
from dualwrite.cutover.functions import VariableChange
from dualwrite.cutover.gate import (
    CutoverLimits,
    DecommissionFacts,
    RouteFacts,
    TableFacts,
    decide_cutover,
    decide_decommission,
    reconcile_check,
    replication_check,
)
from dualwrite.cutover.journal import (
    APPLIED,
    APPLYING,
    CUTOVER,
    REVERTED,
    ROLLBACK,
    Entry,
    FunctionEntry,
    active_cutovers,
    latest_cutover,
)
from dualwrite.cutover.lag import ReplicationFact
from dualwrite.cutover.streams import is_ttl_expiry, record_time
from dualwrite.cutover.writes import WritesFact
from dualwrite.errors import ConfigError

NOW = 1_800_000_000.0
DAY = 86400.0
LIMITS = CutoverLimits(max_reconcile_age_s=15 * 60, max_lag_s=60)


def recorded(data: dict[str, Any]) -> ReconcileRecord:
    return ReconcileRecord.from_json("r", data)


def caught_up(route: str) -> ReplicationFact:
    return ReplicationFact(route, "stream", None, detail="no unprocessed record")


def route(name: str = "r", **kw: Any) -> RouteFacts:
    facts: dict[str, Any] = {
        "route": name,
        "target": f"{name}-new",
        "target_exists": True,
        "reconcile": recorded({"parity": True, "at": NOW - 60}),
        "replication": caught_up(name),
        "quarantined": 0,
    }
    facts.update(kw)
    return RouteFacts(**facts)


def test_cutover_gate_passes_when_every_route_is_ready() -> None:
    decision = decide_cutover([route("a"), route("b")], NOW, LIMITS)
    assert decision.ok and decision.reasons == []
    assert len(decision.checks) == 8


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.BACKFILLING])
def test_cutover_refuses_a_route_not_backfilled_even_with_parity(phase: Phase) -> None:
    """A repair can give a route parity, but nothing replicates it before its backfill."""
    decision = decide_cutover([route("a"), route("b", phase=phase)], NOW, LIMITS)
    assert not decision.ok
    (reason,) = decision.reasons
    assert reason.startswith("b:") and f"the route is {phase.value}" in reason
    assert "dualwrite backfill --route b" in reason


def test_cutover_refuses_a_route_whose_backfill_still_needs_its_repair_pass() -> None:
    """A backfill that outlived the stream's retention may have lost changes made during it
    (DESIGN.md section 2: require a repair pass); a reconcile's parity does not prove the
    repair ran."""
    decision = decide_cutover([route("a"), route("b", needs_repair=True)], NOW, LIMITS)
    assert not decision.ok and len(decision.checks) == 8
    (reason,) = decision.reasons
    assert reason.startswith("b:") and "dualwrite reconcile --repair" in reason


@pytest.mark.parametrize(
    ("reconcile", "expected"),
    [
        (None, "no reconcile recorded"),
        (
            {"parity": False, "at": NOW - 60, "missing": 2, "extra": 0},
            "found no parity (missing 2, extra 0, mismatched 0)",
        ),
        ({"parity": True, "at": NOW - 16 * 60}, "is 16.0 min old (limit 15.0 min)"),
        ({"parity": True}, "has no time"),
    ],
)
def test_reconcile_refusals(reconcile: dict[str, Any] | None, expected: str) -> None:
    check = reconcile_check(
        "r", recorded(reconcile) if reconcile else None, NOW, LIMITS.max_reconcile_age_s
    )
    assert not check.ok and expected in check.detail


def test_reconcile_just_inside_the_limit_and_from_the_future_pass() -> None:
    assert reconcile_check("r", recorded({"parity": True, "at": NOW - 15 * 60}), NOW, 15 * 60).ok
    assert reconcile_check("r", recorded({"parity": True, "at": NOW + 30}), NOW, 15 * 60).ok


def test_replication_decisions() -> None:
    assert replication_check(caught_up("r"), 60).ok
    young = replication_check(ReplicationFact("r", "stream", 59.0, detail="59s"), 60)
    # passes, and says a record is unprocessed (it said "caught up")
    assert young.ok and young.detail.startswith("within the 60s lag limit (stream: 59s)")
    behind = replication_check(ReplicationFact("r", "stream", 61.0, detail="61s"), 60)
    assert not behind.ok and "not caught up" in behind.detail and "replicate" in behind.detail
    broken = replication_check(
        ReplicationFact("r", "event source mapping", None, "is Disabled"), 60
    )
    assert not broken.ok and broken.detail == "is Disabled"


def test_cutover_reasons_name_each_failing_route() -> None:
    decision = decide_cutover(
        [
            route("a", quarantined=2),
            route("b", target_exists=False, reconcile=None),
            route("c"),
        ],
        NOW,
        LIMITS,
    )
    assert not decision.ok
    assert [r.split(":")[0] for r in decision.reasons] == ["a", "b", "b"]
    assert "2 unresolved quarantined" in decision.reasons[0]
    assert "target b-new does not exist" in decision.reasons[1]
    as_json = decision.to_json()
    assert as_json["ok"] is False and len(as_json["checks"]) == 13


# --- journal queries ----------------------------------------------------------------------


def entry(sk: str, action: str, at: float, status: str = APPLIED, **kw: Any) -> Entry:
    return Entry(sk=sk, action=action, at=at, status=status, **kw)


def test_active_and_latest_cutovers() -> None:
    entries = [
        entry("3", CUTOVER, 30, rolled_back_by="4"),
        entry("1", CUTOVER, 10, REVERTED),
        entry("4", ROLLBACK, 40),
        entry("5", CUTOVER, 50),
        entry("2", CUTOVER, 20, APPLYING),
    ]
    assert [e.sk for e in active_cutovers(entries)] == ["2", "5"]
    latest = latest_cutover(entries)
    assert latest is not None and latest.sk == "5"
    assert latest_cutover([entry("1", CUTOVER, 10, REVERTED)]) is None


def test_entry_json_round_trip() -> None:
    e = entry(
        "x",
        CUTOVER,
        12.5,
        functions=(FunctionEntry("f", {"A": "1"}, {"A": "2"}, ("A",), applied=True),),
        reason="incident 42",
        forced=True,
        gate_reasons=("r: stale",),
    )
    back = Entry.from_json("x", e.to_json())
    assert back == e


# --- decommission -------------------------------------------------------------------------

CUT = entry("c", CUTOVER, NOW - 8 * DAY)


def table(name: str = "old", **kw: Any) -> TableFacts:
    facts: dict[str, Any] = {
        "table": name,
        "exists": True,
        "deletion_protection": False,
        "writes": WritesFact(name, None, None),
    }
    facts.update(kw)
    return TableFacts(**facts)


def decide(latest: Entry | None = CUT, naming=(), tables=None, yes: bool = False, days: float = 7):  # type: ignore[no-untyped-def]
    facts = DecommissionFacts(latest, tuple(naming), tuple(tables or [table()]))
    return decide_decommission(facts, NOW, days, yes=yes)


def test_decommission_allowed_after_the_window() -> None:
    d = decide()
    assert d.ok, d.reasons


@pytest.mark.parametrize(
    ("latest", "expected"),
    [
        (None, "no cutover recorded"),
        (entry("c", CUTOVER, NOW - 8 * DAY, rolled_back_by="r"), "was rolled back"),
        (entry("c", CUTOVER, NOW - 8 * DAY, APPLYING), "did not finish"),
        (entry("c", CUTOVER, NOW - 6.5 * DAY), "observation window is not over: 6.50 of 7 day(s)"),
    ],
)
def test_decommission_cutover_refusals(latest: Entry | None, expected: str) -> None:
    d = decide(latest)
    assert not d.ok and expected in d.reasons[0]


def test_window_boundary_is_inclusive() -> None:
    assert decide(entry("c", CUTOVER, NOW - 7 * DAY)).ok


def test_decommission_refuses_functions_writes_and_protection() -> None:
    naming = [VariableChange("f", "T", "old", "new"), VariableChange("f", "U", "arn/old", "n")]
    assert decide(naming=naming).reasons == [
        "f: still names an old table (T=old, U=arn/old): cut over again"
    ]
    written = table(writes=WritesFact("old", NOW - DAY, None))
    assert "after the cutover" in decide(tables=[written]).reasons[0]
    cloudwatch = table(writes=WritesFact("old", None, 3.0))
    assert "3 write capacity units" in decide(tables=[cloudwatch]).reasons[0]
    unreadable = table(writes=WritesFact("old", None, None, "no stream on old"))
    assert decide(tables=[unreadable]).reasons == ["old: no stream on old"]
    protected = table(deletion_protection=True)
    assert "pass --yes" in decide(tables=[protected]).reasons[0]
    assert decide(tables=[protected], yes=True).ok
    assert decide(tables=[table(exists=False, writes=None)]).ok  # gone: nothing to check


# --- small pure helpers -------------------------------------------------------------------


def test_stream_record_helpers() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert record_time({"dynamodb": {"ApproximateCreationDateTime": when}}) == when.timestamp()
    assert record_time({"dynamodb": {"ApproximateCreationDateTime": 1700000000}}) == 1.7e9
    ttl = {"userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}
    assert is_ttl_expiry(ttl)
    assert not is_ttl_expiry({"eventName": "REMOVE"})


def test_clock_from_option() -> None:
    clock = clock_from("2030-01-01T00:00:00Z")
    assert clock() >= datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert clock() < datetime(2030, 1, 1, 0, 1, tzinfo=UTC).timestamp()
    naive = clock_from("2030-01-01T00:00:00")
    assert abs(naive() - clock()) < 5
    with pytest.raises(ConfigError):
        clock_from("next tuesday")


def test_after_a_rollback_decommission_says_so_and_blames_no_writer() -> None:
    """The old tables are the live ones again: their writes since the cutover (reverse
    replication's, then the application's) were reported as "a writer still uses it"."""
    written = table(writes=WritesFact("old", NOW - DAY, None))
    rolled_back = entry("c", CUTOVER, NOW - 8 * DAY, rolled_back_by="r")
    d = decide(rolled_back, tables=[written])
    assert not d.ok
    assert len(d.reasons) == 1 and "was rolled back: cut over again first" in d.reasons[0]


def test_a_switch_stopped_midway_names_the_command_that_finishes_it() -> None:
    """A rollback killed after it put the functions back and before it switched back: its
    switch (Direction.next_at) holds the changes replication must order. Decommission and
    the cutover gate said "cut over again first" and "run replicate --until-caught-up",
    which waits for that switch: they say to run the rollback again."""
    rolled_back = entry("c", CUTOVER, NOW - 8 * DAY, rolled_back_by="r")
    facts = DecommissionFacts(rolled_back, (), (table(),), (), ("servers", "memberships"))
    d = decide_decommission(facts, NOW, 7, yes=False)
    assert not d.ok and len(d.reasons) == 2
    assert "was rolled back" in d.reasons[0]
    assert "servers, memberships" in d.reasons[1] and "dualwrite rollback" in d.reasons[1]

    behind = ReplicationFact("r", "stream", 120.0, detail="120s")
    held = replication_check(behind, 60, switching=True)
    assert not held.ok and "run dualwrite rollback again" in held.detail
    assert "replicate --until-caught-up" not in held.detail
    gate = decide_cutover([route(replication=behind, switching=True)], NOW, LIMITS)
    assert any("run dualwrite rollback again" in r for r in gate.reasons)
