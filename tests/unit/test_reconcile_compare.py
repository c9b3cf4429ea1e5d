"""The pure comparison core: kinds of difference, parity percent, results, tallies."""

from __future__ import annotations

import pytest

from reconciler.compare import (
    EXTRA,
    MISMATCHED,
    MISSING,
    Difference,
    Tally,
    classify,
    parity_percent,
    route_result,
)

ITEM = {
    "PK": {"S": "SERVER#1"},
    "SK": {"S": "METADATA"},
    "n": {"N": "1.50"},
    "t": {"SS": ["a", "b"]},
}


def test_classify_every_case() -> None:
    assert classify(None, None) is None
    assert classify(ITEM, None) == MISSING
    assert classify(None, ITEM) == EXTRA
    assert classify(ITEM, dict(ITEM)) is None
    assert classify(ITEM, {**ITEM, "n": {"N": "1.5"}, "t": {"SS": ["b", "a"]}}) is None
    assert classify(ITEM, {**ITEM, "n": {"N": "2"}}) == MISMATCHED
    assert classify(ITEM, {k: v for k, v in ITEM.items() if k != "t"}) == MISMATCHED


@pytest.mark.parametrize(
    ("expected", "missing", "extra", "mismatched", "percent"),
    [
        (0, 0, 0, 0, 100.0),
        (10, 0, 0, 0, 100.0),
        (10, 1, 0, 0, 90.0),
        (10, 0, 0, 2, 80.0),
        (8, 0, 2, 0, 80.0),
        (0, 0, 3, 0, 0.0),
        (3, 1, 1, 1, 25.0),
    ],
)
def test_parity_percent(
    expected: int, missing: int, extra: int, mismatched: int, percent: float
) -> None:
    assert parity_percent(expected, missing, extra, mismatched) == percent


def test_a_result_reports_found_counts_and_the_state_left_behind() -> None:
    tally = Tally(source_items=9, expected_target_items=10, target_items=11, quarantined=1)
    found = {MISSING: 1, EXTRA: 2, MISMATCHED: 1}
    checked = route_result("r", "S", "T", tally, found=found, remaining=found).to_result_json()
    assert checked["parity"] is False
    assert (checked["missing"], checked["extra"], checked["mismatched"]) == (1, 2, 1)
    assert checked["parity_percent"] == checked["found_parity_percent"] == round(100 * 8 / 12, 4)
    repaired = route_result(
        "r",
        "S",
        "T",
        tally,
        found=found,
        remaining={MISSING: 0, EXTRA: 0, MISMATCHED: 0},
        repaired=4,
    ).to_result_json()
    assert repaired["parity"] is True
    assert (repaired["missing"], repaired["extra"], repaired["mismatched"]) == (1, 2, 1)
    assert repaired["repaired"] == 4 and repaired["parity_percent"] == 100.0
    assert repaired["found_parity_percent"] == checked["parity_percent"]
    for key in ("route", "source_items", "expected_target_items", "quarantined"):
        assert key in repaired


def test_tallies_add_up_and_survive_json() -> None:
    a = Tally(source_items=1, expected_target_items=2, target_items=3, quarantined=4)
    a.count([Difference("r", MISSING, {"k": {"S": "1"}}, None, None, ITEM, None)])
    b = Tally.from_json(a.to_json())
    assert b == a
    b.add(a)
    assert (b.source_items, b.quarantined, b.differences[MISSING]) == (2, 8, 2)


def test_a_difference_sample_names_attributes_never_values() -> None:
    actual = {**ITEM, "email": {"S": "someone@example.com"}}
    d = Difference("r", MISMATCHED, {"PK": ITEM["PK"], "SK": ITEM["SK"]}, None, None, ITEM, actual)
    sample = d.sample().to_json()
    assert sample["attributes"] == ["email"]
    assert "someone@example.com" not in repr(sample)
