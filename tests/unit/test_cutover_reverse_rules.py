"""The pure rules of the switch of direction (DESIGN.md section 8): the journal records, the
reverse mapping's filter, T and O of a planned switch, the gate checks of routes that cannot
replicate in reverse or still drain, and decommission refused by foreign writes."""

from __future__ import annotations

import json

import pytest

from dualwrite.aws.tables import TableInfo
from dualwrite.config import parse_migration
from dualwrite.cutover.facts import RouteTables
from dualwrite.cutover.gate import (
    DecommissionFacts,
    ForeignFact,
    TableFacts,
    decide_decommission,
    foreign_checks,
)
from dualwrite.cutover.journal import APPLIED, CUTOVER, Entry
from dualwrite.cutover.reversal import drain_checks, inverse_checks, plan_switch
from dualwrite.cutover.reverse_journal import (
    ROLLBACK_LOSES_WRITES,
    DirectionSwitch,
    MappingChange,
    RouteSwitch,
)
from dualwrite.cutover.reverse_mappings import filter_criteria
from dualwrite.mapping.base import KeySchema
from dualwrite.reverse.direction import Flow


def migration(mapping: str = "identity", **cutover: object):  # type: ignore[no-untyped-def]
    return parse_migration(
        {
            "control_table": "ctl",
            "routes": [{"name": "r", "source": "old", "target": "new", "mapping": mapping}],
            "cutover": cutover,
        }
    )


def routes() -> list[RouteTables]:
    key = KeySchema((("id", "S"),))
    info = TableInfo("old", "arn:old", key, "arn:old/stream", "NEW_AND_OLD_IMAGES")
    return [RouteTables("r", "old", "new", info, None)]


SWITCH = DirectionSwitch(
    reverse=True,
    overlap_s=7.0,
    routes=(RouteSwitch("r", "reverse", 100.0, 9.5, saved=True),),
    mappings=(MappingChange("u-1", "arn:fn", "arn:stream", 95.0, False, {"Filters": []}, True),),
)


def test_the_switch_round_trips_through_the_journal_entry() -> None:
    entry = Entry("sk", CUTOVER, 100.0, APPLIED, repointed_at=102.5, reverse=SWITCH)
    back = Entry.from_json("sk", json.loads(json.dumps(entry.to_json())))
    assert back == entry and back.reverse is not None and back.reverse.complete
    assert Entry.from_json("sk", {"action": "cutover", "status": "applied"}).reverse is None


def test_with_route_and_with_mapping_replace_in_place_or_append() -> None:
    pending = SWITCH.with_route(RouteSwitch("r", "reverse", 100.0, 9.5, pending="drains"))
    assert [r.pending for r in pending.routes] == ["drains"] and not pending.complete
    two = pending.with_route(RouteSwitch("s", "reverse", 100.0, 9.5))
    assert [r.route for r in two.routes] == ["r", "s"]
    undone = SWITCH.with_mapping(MappingChange("u-1", "arn:fn", "arn:stream", 95.0, False))
    assert len(undone.mappings) == 1 and not undone.complete
    assert SWITCH.mapping("u-1") is not None and SWITCH.mapping("nope") is None


def test_the_filter_starts_at_the_whole_second_at_or_before_the_start() -> None:
    (f,) = filter_criteria(1700000004.9)["Filters"]
    assert json.loads(f["Pattern"]) == {
        "dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">=", 1700000004]}]}
    }


def test_a_planned_switch_has_T_and_overlap_E_minus_T_plus_O() -> None:
    plan = plan_switch(migration(), Flow.REVERSE, 100.0, 104.0, [3.0, 30.0], ["r"])
    assert plan.reverse and plan.overlap_s == 30.0
    assert plan.routes == (RouteSwitch("r", "reverse", 100.0, 34.0),)
    configured = plan_switch(migration(overlap_seconds=5), Flow.FORWARD, 100.0, 99.0, [60], ["r"])
    assert configured.routes == (RouteSwitch("r", "forward", 100.0, 5.0),)  # E never before T
    default = plan_switch(migration(), Flow.REVERSE, 100.0, 100.0, [], ["r"])
    assert default.overlap_s == 3.0  # Lambda's default Timeout


def test_with_reverse_off_a_cutover_plans_no_direction_and_says_a_rollback_loses_writes() -> None:
    plan = plan_switch(migration(reverse=False), Flow.REVERSE, 100.0, 101.0, [3.0], ["r"])
    assert not plan.reverse and plan.routes == () and plan.note == ROLLBACK_LOSES_WRITES
    assert plan.complete


@pytest.mark.parametrize(
    ("mapping", "reverse", "ok", "detail"),
    [
        ("identity", True, True, "the mapping has an inverse"),
        ("tests.unit.sample_mapping:TaggedCopy", True, False, "has no inverse"),
        ("tests.unit.sample_mapping:TaggedCopy", False, True, ROLLBACK_LOSES_WRITES),
    ],
)
def test_inverse_checks(mapping: str, reverse: bool, ok: bool, detail: str) -> None:
    (check,) = inverse_checks(migration(mapping, reverse=reverse), routes())
    assert check.ok is ok and detail in check.detail


def test_drain_checks_refuse_a_route_whose_previous_switch_still_drains() -> None:
    (check,) = drain_checks({"r": "the reverse direction is still draining"}, routes())
    assert not check.ok and check.name == "direction"
    assert drain_checks({}, routes())[0].ok


def test_decommission_is_refused_by_listed_foreign_writes_naming_a_few() -> None:
    (refused,) = foreign_checks([ForeignFact("r", "old", 7, ("id=a", "id=b"))])
    assert not refused.ok and "7 key(s) of old" in refused.detail
    assert "id=a, id=b, ..." in refused.detail
    (fine,) = foreign_checks([ForeignFact("r", "old", 0)])
    assert fine.ok
    latest = Entry("sk", CUTOVER, 0.0, APPLIED)
    reverse_table = TableFacts("old", exists=True, reverse=True)  # no stream witness needed
    facts = DecommissionFacts(
        latest, (), (reverse_table,), (ForeignFact("r", "old", 1, ("id=x",)),)
    )
    decision = decide_decommission(facts, 30 * 86400.0, 7, yes=False)
    assert [c.name for c in decision.checks if not c.ok] == ["foreign writes"]
    clear = DecommissionFacts(latest, (), (reverse_table,), (ForeignFact("r", "old", 0),))
    assert decide_decommission(clear, 30 * 86400.0, 7, yes=False).ok
