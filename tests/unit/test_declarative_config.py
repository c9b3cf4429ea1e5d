"""A declarative `mapping:` in the migration file: one-line errors that name the key."""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest

from dualwrite.config import load_migration, parse_migration
from dualwrite.errors import ConfigError
from dualwrite.mapping import DeclarativeSpec
from tests.conftest import MIGRATIONS

ORDERS_MAPPING = {
    "key": {"PK": "CUSTOMER#{customerId}", "SK": "ORDER#{orderId}"},
    "set": {"Type": "Order"},
    "rename": {"total": "amount"},
    "drop": ["legacyFlag"],
}


def migration(mapping: Any, *others: dict[str, Any]) -> dict[str, Any]:
    return {
        "routes": [
            {"name": "servers", "source": "Servers", "target": "CoreTable", "mapping": "servers"},
            *others,
            {"name": "orders", "source": "OrdersTable", "target": "CoreTable", "mapping": mapping},
        ]
    }


def error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_migration(data, "m.yaml")
    text = str(info.value)
    assert text.startswith("m.yaml: ") and "\n" not in text
    return text


def test_the_example_file_loads_a_declarative_route_beside_servers() -> None:
    m = load_migration(MIGRATIONS / "orders-coretable.yaml")
    assert [r.name for r in m.routes] == ["servers", "orders"]
    assert m.routes[0].mapping == "servers"
    spec = m.routes[1].mapping
    assert isinstance(spec, DeclarativeSpec)
    assert spec == DeclarativeSpec.model_validate(ORDERS_MAPPING)
    assert parse_migration(migration(ORDERS_MAPPING)).routes[1].mapping == spec


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"key": {"PK": "CUSTOMER#{customerId}", "SK": "{orderId}{line}"}},
            "routes[1].mapping.key.SK: template '{orderId}{line}' cannot be parsed back",
        ),
        ({"key": {"PK": "C#{customerId"}}, "routes[1].mapping.key.PK: template 'C#{customerId'"),
        (
            {"key": {}},
            "routes[1].mapping.key: a DynamoDB key is a partition key and at most a sort key: "
            "give one or two attributes, not 0 (none)",
        ),
        (  # pydantic said "Dictionary should have at most 2 items after validation, not 3"
            {"key": {"PK": "A#{a}", "SK": "B#{b}", "Z": "C"}},
            "routes[1].mapping.key: a DynamoDB key is a partition key and at most a sort key: "
            "give one or two attributes, not 3 (PK, SK, Z)",
        ),
        (
            {"key": {"PK": "SERVER#{customerId}", "SK": "META{orderId}"}},
            "routes[1].mapping.key: route orders could write keys (PK=SERVER#*, SK=META*) "
            "that route servers owns on CoreTable (PK=SERVER#*, SK=METADATA)",
        ),
        ({**ORDERS_MAPPING, "set": {"SK": "x"}}, "routes[1].mapping: set.SK: collides with key"),
        (
            {**ORDERS_MAPPING, "rename": {"total": "PK"}},
            "routes[1].mapping: rename.total: new name PK collides with key attribute PK",
        ),
        (
            {**ORDERS_MAPPING, "rename": {"total": "Type"}},
            "routes[1].mapping: rename.total: new name Type collides with set.Type",
        ),
        (
            {**ORDERS_MAPPING, "rename": {"total": "amount", "sum": "amount"}},
            "rename.sum: total is renamed to amount as well",
        ),
        (
            {**ORDERS_MAPPING, "rename": {"orderId": "order"}},
            "rename.orderId: orderId is a key placeholder",
        ),
        ({**ORDERS_MAPPING, "drop": ["total"]}, "drop: total is also renamed"),
        (
            {**ORDERS_MAPPING, "set": {"Type": [1]}},
            "routes[1].mapping.set: set.Type: must be a string, a number or a boolean, not list",
        ),
        # DynamoDB refuses these on every write: refused when the file is loaded
        ({**ORDERS_MAPPING, "set": {"W": math.inf}}, "set.W: inf is no number DynamoDB can store"),
        ({**ORDERS_MAPPING, "set": {"W": math.nan}}, "set.W: nan is no number DynamoDB can store"),
        (
            {**ORDERS_MAPPING, "set": {"W": 1e300}},
            "set.W: 1e+300 is out of DynamoDB's number range",
        ),
        ({**ORDERS_MAPPING, "set": {"W": 1e-200}}, "set.W: 1e-200 is out of DynamoDB's number"),
        ({**ORDERS_MAPPING, "set": {"W": 10**40 + 1}}, "is out of DynamoDB's number range"),
        (
            {**ORDERS_MAPPING, "set": {"Since": datetime.date(2024, 1, 1)}},
            "set.Since: must be a string, a number or a boolean, not date (quote it",
        ),
        ({**ORDERS_MAPPING, "set": {"": "x"}}, "set: an attribute name must not be empty"),
        ({**ORDERS_MAPPING, "rename": {"total": ""}}, "mapping.rename.total: String should have"),
        ({**ORDERS_MAPPING, "drop": [""]}, "mapping.drop[0]: String should have at least 1"),
        ({**ORDERS_MAPPING, "sett": {}}, "routes[1].mapping.sett: unknown key"),
    ],
)
def test_bad_declarative_mappings_name_the_key(mapping: dict[str, Any], message: str) -> None:
    assert message in error(migration(mapping))


def test_key_spaces_are_checked_against_every_route_sharing_the_target() -> None:
    users = {"name": "users", "source": "Users", "target": "CoreTable", "mapping": "memberships"}
    clash = error(migration({"key": {"PK": "USER#{customerId}", "SK": "SERVER#{orderId}"}}, users))
    assert "routes[2].mapping.key: route orders could write keys" in clash
    assert "route memberships" not in clash
    assert "route users owns on CoreTable (PK=USER#*, SK=SERVER#* or METADATA)" in clash
    twin = {"name": "twin", "source": "Twin", "target": "CoreTable", "mapping": ORDERS_MAPPING}
    assert "route orders could write keys" in error(migration(ORDERS_MAPPING, twin))
    whole = {"name": "copy", "source": "Copy", "target": "CoreTable", "mapping": "identity"}
    everything = error(migration(ORDERS_MAPPING, whole))  # found first against servers
    assert "route copy (identity) could write keys (every key) that route servers" in everything
    orders = migration(ORDERS_MAPPING)["routes"][-1]
    alone = error({"routes": [whole, orders]})
    assert "that route copy owns on CoreTable (every key)" in alone
    elsewhere = {**twin, "target": "OtherTable"}
    assert len(parse_migration(migration(ORDERS_MAPPING, elsewhere)).routes) == 3
    apart = {**twin, "mapping": {"key": {"PK": "CUSTOMER#{customerId}", "SK": "CART#{id}"}}}
    assert len(parse_migration(migration(ORDERS_MAPPING, apart)).routes) == 3


MEMBERSHIPS = {"name": "users", "source": "Users", "target": "CoreTable", "mapping": "memberships"}


def test_a_customers_orders_under_the_users_partition_load_beside_memberships() -> None:
    # memberships owns USER#*/SERVER#* and USER#*/METADATA, not the whole USER# partition
    orders = {"key": {"PK": "USER#{customerId}", "SK": "ORDER#{orderId}"}, "set": {"Type": "Order"}}
    m = parse_migration(migration(orders, MEMBERSHIPS))
    assert [r.name for r in m.routes] == ["servers", "users", "orders"]
    first = {**MEMBERSHIPS, "name": "later"}  # memberships after the declarative route too
    routes = [migration(orders)["routes"][-1], first]
    assert len(parse_migration({"routes": routes}).routes) == 2


@pytest.mark.parametrize(
    ("key", "theirs"),
    [
        ({"PK": "USER#{customerId}", "SK": "SERVER#{orderId}"}, "(PK=USER#*, SK=SERVER#*)"),
        ({"PK": "USER#{customerId}", "SK": "METADATA"}, "(PK=USER#*, SK=METADATA)"),
        ({"PK": "USER#{customerId}", "SK": "META{orderId}"}, "(PK=USER#*, SK=META*)"),
        ({"PK": "USER{customerId}", "SK": "{orderId}"}, "(PK=USER*, SK=*)"),
        ({"PK": "USER#{customerId}"}, "(PK=USER#*)"),
    ],
)
def test_a_route_that_could_write_a_memberships_key_is_still_refused(
    key: dict[str, str], theirs: str
) -> None:
    mapping = {"key": key}
    clash = error(migration(mapping, MEMBERSHIPS))
    assert (
        f"routes[2].mapping.key: route orders could write keys {theirs} that route users owns "
        "on CoreTable (PK=USER#*, SK=SERVER#* or METADATA)"
    ) in clash


@pytest.mark.parametrize("given", [["servers"], 5, None, ""])
def test_a_mapping_neither_a_name_nor_declarative_is_named_at_its_own_key(given: Any) -> None:
    # it was reported at "routes[1].mapping.name" (pydantic's tag) as "a valid string"
    text = error(migration(given))
    assert text.startswith("m.yaml: routes[1].mapping: must be a mapping's name ")
    assert text.endswith(f"not {given!r}")
