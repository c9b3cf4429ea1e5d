"""The declarative mapping (DESIGN.md section 11): keys from templates, constants, renames,
drops; quarantine; and the builtin servers mapping expressed declaratively, proven identical."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.config import Route
from dualwrite.errors import UnmappableError
from dualwrite.mapping import SERVERS_SPEC, DeclarativeSpec, build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.reverse.model import SourceView, TargetChange
from dualwrite.reverse.plan import InversePlanner
from dualwrite.wire import Item, items_equal
from stream_replicator.routing import route_of_key
from tests.strategies import attributes, key_numbers, key_text

ORDERS_KEY = KeySchema((("customerId", "S"), ("orderId", "S")))
ORDERS = DeclarativeSpec.model_validate(
    {
        "key": {"PK": "CUSTOMER#{customerId}", "SK": "ORDER#{orderId}"},
        "set": {"Type": "Order", "version": 2, "live": True},
        "rename": {"total": "amount"},
        "drop": ["legacyFlag"],
    }
)
orders = build_mapping(ORDERS, ORDERS_KEY)


def order(**attrs: Any) -> dict[str, Any]:
    return {"customerId": {"S": "c1"}, "orderId": {"S": "o1"}, **attrs}


def test_an_order_is_re_keyed_renamed_and_stamped() -> None:
    out = orders.transform(
        order(total={"N": "9.5"}, legacyFlag={"BOOL": True}, status={"S": "paid"})
    )
    assert out == {
        "PK": {"S": "CUSTOMER#c1"},
        "SK": {"S": "ORDER#o1"},
        "Type": {"S": "Order"},
        "version": {"N": "2"},
        "live": {"BOOL": True},
        "amount": {"N": "9.5"},
        "status": {"S": "paid"},
    }
    assert orders.target_key.attributes == (("PK", "S"), ("SK", "S"))
    assert orders.target_keys({"customerId": {"S": "c1"}, "orderId": {"S": "o1"}}) == [
        {"PK": {"S": "CUSTOMER#c1"}, "SK": {"S": "ORDER#o1"}}
    ]
    assert str(ORDERS) == "declarative (PK=CUSTOMER#{customerId}, SK=ORDER#{orderId})"


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"customerId": {"S": "c1"}}, "item lacks key attribute(s) orderId"),
        (order(PK={"S": "x"}), "source attribute(s) PK would overwrite"),
        (order(Type={"S": "x"}), "source attribute(s) Type would overwrite"),
        (order(amount={"N": "1"}), "source attribute(s) amount would overwrite"),
        ({"customerId": {"N": "1"}, "orderId": {"S": "o"}}, "key attribute customerId is not"),
    ],
)
def test_items_that_cannot_map_are_quarantined_with_their_reason(
    item: dict[str, Any], reason: str
) -> None:
    assert reason in (orders.quarantine_reason(item) or "")
    with pytest.raises(UnmappableError):
        orders.transform(item)


def test_an_attribute_the_mapping_does_not_carry_may_share_a_reserved_name() -> None:
    spec = DeclarativeSpec.model_validate(
        {"key": {"PK": "X#{id}"}, "set": {"Type": "X"}, "drop": ["Type"]}
    )
    m = build_mapping(spec, KeySchema((("id", "S"),)))
    assert m.transform({"id": {"S": "1"}, "Type": {"S": "old"}})["Type"] == {"S": "X"}


def test_a_key_that_renders_ambiguously_is_quarantined() -> None:
    spec = DeclarativeSpec.model_validate({"key": {"PK": "{a}#{b}"}})
    m = build_mapping(spec, KeySchema((("a", "S"), ("b", "S"))))
    assert m.quarantine_reason({"a": {"S": "x"}, "b": {"S": "y#z"}}) is None
    assert "ambiguously" in (m.quarantine_reason({"a": {"S": "x#y"}, "b": {"S": "z"}}) or "")
    assert m.source_key_for({"PK": {"S": "x#y#z"}}) == {"a": {"S": "x"}, "b": {"S": "y#z"}}


def test_schema_problems_name_the_key() -> None:
    assert orders.schema_problem() is None
    typo = build_mapping(ORDERS, KeySchema((("customerId", "S"), ("orderNo", "S"))))
    assert typo.schema_problem() == (
        "mapping.key.SK: placeholder {orderId} is not a key attribute of the source "
        "(customerId (S, hash), orderNo (S, range))"
    )
    binary = build_mapping(ORDERS, KeySchema((("customerId", "B"), ("orderId", "S"))))
    assert "placeholder {customerId} is of type B" in (binary.schema_problem() or "")
    spec = DeclarativeSpec.model_validate({"key": {"PK": "C#{customerId}", "SK": "ORDERS"}})
    unused = build_mapping(spec, ORDERS_KEY)
    assert "source key attribute orderId is in no template" in (unused.schema_problem() or "")


def test_key_space_is_the_templates() -> None:
    assert orders.owns({"PK": {"S": "CUSTOMER#c"}, "SK": {"S": "ORDER#o"}})
    assert not orders.owns({"PK": {"S": "CUSTOMER#c"}, "SK": {"S": "METADATA"}})
    assert not orders.owns({"PK": {"S": "SERVER#c"}, "SK": {"S": "ORDER#o"}})
    assert orders.source_key_for({"PK": {"S": "CUSTOMER#c"}, "SK": {"S": "ORDER#o#1"}}) == {
        "customerId": {"S": "c"},
        "orderId": {"S": "o#1"},
    }
    numeric = build_mapping(
        DeclarativeSpec.model_validate({"key": {"PK": "N#{n}"}}), KeySchema((("n", "N"),))
    )
    assert numeric.source_key_for({"PK": {"S": "N#-1500.25"}}) == {"n": {"N": "-1500.25"}}
    # forward embeds the spelling DynamoDB gives back: another spelling is no source key's
    # (taken for -1500.25, it would overwrite that item)
    for other in ("-1.50025E+3", "-01500.25", "-1500.250", "abc", "-0"):
        assert numeric.source_key_for({"PK": {"S": f"N#{other}"}}) is None, other
    # DynamoDB takes 38 significant digits (41 used to pass: Decimal rounded them first)
    for digits, taken in ((38, True), (39, False), (41, False)):
        text = "9" * digits
        assert (numeric.source_key_for({"PK": {"S": f"N#{text}"}}) is not None) is taken
    assert numeric.source_key_for({"PK": {"S": "N#1" + "0" * 125}}) is not None  # 1E+125
    assert numeric.source_key_for({"PK": {"S": "N#1" + "0" * 126}}) is None


@given(key_text, key_text, attributes)
def test_keys_round_trip_and_every_other_attribute_is_carried(
    cid: str, oid: str, attrs: dict[str, Any]
) -> None:
    reserved = orders.clashes | set(ORDERS_KEY.names)
    attrs = {k: v for k, v in attrs.items() if k not in reserved}
    item = {"customerId": {"S": cid}, "orderId": {"S": oid}, **attrs}
    out = orders.transform(item)
    key = {"PK": out["PK"], "SK": out["SK"]}
    assert orders.owns(key)
    assert orders.source_key_for(key) == {"customerId": {"S": cid}, "orderId": {"S": oid}}
    carried = {("amount" if k == "total" else k): v for k, v in attrs.items() if k != "legacyFlag"}
    rest = {k: v for k, v in out.items() if k not in ("PK", "SK", "Type", "version", "live")}
    assert items_equal(rest, carried)


# --- servers, declaratively ------------------------------------------------------------------
server_ids = st.one_of(
    key_text.map(lambda s: ("S", {"S": s})), key_numbers.map(lambda n: ("N", {"N": n}))
)


@given(server_ids, attributes, st.sampled_from([None, "PK", "SK", "Type"]))
def test_servers_declaratively_gives_identical_items(
    sid: tuple[str, dict[str, str]], attrs: dict[str, Any], clash: str | None
) -> None:
    typ, value = sid
    schema = KeySchema((("id", typ),))
    builtin, declarative = build_mapping("servers", schema), build_mapping(SERVERS_SPEC, schema)
    attrs.pop("id", None)
    item = {"id": value, **attrs}
    if clash:
        item[clash] = {"S": "x"}
    accepted = builtin.quarantine_reason(item) is None
    assert accepted == (declarative.quarantine_reason(item) is None)
    if accepted:
        assert declarative.transform(item) == builtin.transform(item)
    [key] = builtin.target_keys({"id": value})
    assert declarative.target_keys({"id": value}) == [key]
    assert declarative.owns(key) and builtin.owns(key)
    assert declarative.source_key_for(key) == builtin.source_key_for(key) == {"id": value}
    assert declarative.target_key == builtin.target_key
    other = {"PK": key["PK"], "SK": {"S": "CONFIG"}}
    assert declarative.owns(other) is builtin.owns(other) is False


@pytest.mark.parametrize(
    ("constant", "dynamodb"),
    [(2.0, "2"), (1e20, "100000000000000000000"), (-0.0, "0"), (1.5, "1.5"), (7, "7")],
)
def test_a_number_constant_is_written_and_recognised_in_dynamodbs_spelling(
    constant: float, dynamodb: str
) -> None:
    """DynamoDB stores and streams numbers in one spelling: the constant is written in it,
    and the inverse accepts it however it is spelled, rather than calling every change of
    the route unrepresentable."""
    spec = DeclarativeSpec.model_validate({"key": {"PK": "ORDER#{id}"}, "set": {"v": constant}})
    m = build_mapping(spec, KeySchema((("id", "S"),)))
    source = {"id": {"S": "o1"}, "total": {"N": "5"}}
    target = m.transform(source)
    assert target["v"] == {"N": dynamodb}
    streamed = {**target, "v": {"N": dynamodb + (".0" if "." not in dynamodb else "0")}}
    assert m.inverse(streamed, None) == source
    with pytest.raises(UnmappableError, match="the mapping sets"):
        m.inverse({**target, "v": {"N": "3"}}, None)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            {"customerId": {"S": "c" * 2045}, "orderId": {"S": "1"}},
            "target key PK is 2054 bytes, over DynamoDB's 2048-byte limit",
        ),
        (
            {"customerId": {"S": "c"}, "orderId": {"S": "é" * 510}},
            "target key SK is 1026 bytes, over DynamoDB's 1024-byte limit",
        ),
    ],
)
def test_a_legal_source_key_the_template_pushes_over_dynamodbs_key_limit_is_quarantined(
    source: Item, reason: str
) -> None:
    """Else every write of its batch fails (a backfill stopped on it for good)."""
    with pytest.raises(UnmappableError, match=reason):
        orders.transform({**source, "total": {"N": "1"}})
    at_limit = {"customerId": {"S": "c" * (2048 - len("CUSTOMER#"))}, "orderId": {"S": "1"}}
    assert len(orders.transform(at_limit)["PK"]["S"]) == 2048


ORDERS_N = KeySchema((("customerId", "S"), ("orderId", "N")))
NUMERIC_ORDERS = build_mapping(ORDERS, ORDERS_N)


@pytest.mark.parametrize("sk", ["ORDER#01", "ORDER#1.0", "ORDER#abc", "ORDER#1E+2"])
def test_a_key_in_the_templates_space_that_no_source_key_holds_is_still_the_routes(
    sk: str,
) -> None:
    """Owned (so reconcile counts it as extra, and reverse quarantines it under this route
    with the right reason), though no source key maps to it."""
    key = {"PK": {"S": "CUSTOMER#c1"}, "SK": {"S": sk}}
    assert NUMERIC_ORDERS.owns(key)
    assert NUMERIC_ORDERS.source_key_for(key) is None
    change = TargetChange("MODIFY", key, {**key, "Type": {"S": "Order"}})
    with pytest.raises(UnmappableError, match="in the route's key space, but no source key"):
        InversePlanner(NUMERIC_ORDERS).reverse_changes(change, SourceView())
    assert not NUMERIC_ORDERS.owns({"PK": {"S": "SERVER#1"}, "SK": {"S": sk}})


def test_a_stray_key_on_a_shared_target_is_routed_to_the_route_whose_space_it_is_in() -> None:
    servers = Route(name="servers", source="ServersTable", target="CoreTable", mapping="servers")
    orders = Route(name="orders", source="OrdersTable", target="CoreTable", mapping=ORDERS)
    mappings = [
        (servers, build_mapping("servers", KeySchema((("id", "S"),)))),
        (orders, NUMERIC_ORDERS),
    ]
    keys = {"PK": {"S": "CUSTOMER#c1"}, "SK": {"S": "ORDER#01"}}
    assert route_of_key(keys, mappings, servers).name == "orders"
