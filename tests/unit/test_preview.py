"""preview's judging (pure): target or quarantine reason, and the inverse's verdict."""

from __future__ import annotations

from dualwrite.mapping import DeclarativeSpec, build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.mapping.identity import IdentityMapping
from dualwrite.preview import preview_item, preview_items
from dualwrite.wire import Item

ORDERS = build_mapping(
    DeclarativeSpec.model_validate(
        {"key": {"PK": "C#{c}", "SK": "O#{o}"}, "set": {"Type": "Order"}, "drop": ["old"]}
    ),
    KeySchema((("c", "S"), ("o", "S"))),
)


class Forgetful(IdentityMapping):
    """An inverse that loses an attribute: preview must say so."""

    def inverse(self, target: Item, current: Item | None) -> Item:
        return {k: v for k, v in target.items() if k != "note"}


def test_a_mapped_item_round_trips() -> None:
    item = {"c": {"S": "1"}, "o": {"S": "2"}, "old": {"N": "1"}, "x": {"B": b"\x00"}}
    sample = preview_item(ORDERS, item)
    assert sample.target == ORDERS.transform(item)
    assert sample.round_trip is True and sample.reason is None
    assert sample.to_json() == {
        "source": {"c": {"S": "1"}, "o": {"S": "2"}, "old": {"N": "1"}, "x": {"B": "AA=="}},
        "target": {
            "x": {"B": "AA=="},
            "PK": {"S": "C#1"},
            "SK": {"S": "O#2"},
            "Type": {"S": "Order"},
        },
        "quarantined": False,
        "reason": None,
        "round_trip": True,
        "round_trip_problem": None,
    }


def test_a_quarantined_item_shows_its_reason() -> None:
    sample = preview_item(ORDERS, {"c": {"S": "1"}, "o": {"S": "2"}, "Type": {"S": "x"}})
    assert sample.target is None and sample.round_trip is None
    assert sample.to_json()["quarantined"] is True
    assert "Type would overwrite" in (sample.reason or "")


def test_no_inverse_and_a_bad_inverse() -> None:
    members = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))
    item = {"userId": {"S": "u"}, "serverId": {"S": "s"}, "role": {"S": "admin"}}
    [sample] = preview_items(members, [item])
    assert sample.target is not None and sample.round_trip is True  # memberships has an inverse
    from tests.unit.sample_mapping import TaggedCopy

    [none] = preview_items(TaggedCopy(KeySchema((("id", "S"),))), [{"id": {"S": "1"}}])
    assert none.target is not None and none.round_trip is None
    forgetful = Forgetful(KeySchema((("id", "S"),)))
    bad = preview_item(forgetful, {"id": {"S": "1"}, "note": {"S": "n"}})
    assert bad.round_trip is False
    assert bad.round_trip_problem == "attribute(s) note come back changed"
    unrepresentable = preview_item(
        build_mapping("servers", KeySchema((("id", "N"),))), {"id": {"N": "1"}, "Type2": {"S": ""}}
    )
    assert unrepresentable.round_trip is True


def test_a_subclass_that_changes_the_transform_does_not_inherit_the_inverse() -> None:
    from tests.unit.sample_mapping import TaggedCopy

    tagged = TaggedCopy(KeySchema((("id", "S"),)))
    assert not tagged.has_inverse
    assert preview_item(tagged, {"id": {"S": "1"}}).round_trip is None
    assert Forgetful.has_inverse  # defines its own
