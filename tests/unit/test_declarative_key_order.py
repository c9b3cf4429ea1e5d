"""A declarative `key:` is a YAML mapping, whose order means nothing: bound to its target's
key schema, the mapping holds the partition key to DynamoDB's 2048-byte limit and the sort key
to 1024 whatever order the file names them in (they were paired with the limits in YAML
order, so {SK: ..., PK: ...} quarantined a valid 1500-byte partition key for good and let a
sort key over 1024 bytes through to a write DynamoDB refuses)."""

from __future__ import annotations

import pytest

from dualwrite.errors import UnmappableError
from dualwrite.mapping import DeclarativeSpec, build_mapping
from dualwrite.mapping.base import PK_SK, KeySchema

SOURCE = KeySchema((("customerId", "S"), ("orderId", "S")))
SPEC = DeclarativeSpec.model_validate(
    {"key": {"SK": "ORDER#{orderId}", "PK": "CUSTOMER#{customerId}"}}
)
REVERSED = build_mapping(SPEC, SOURCE, PK_SK)


def test_the_target_key_is_in_the_tables_order() -> None:
    assert REVERSED.target_key.names == ("PK", "SK")
    assert REVERSED.fits_key(PK_SK)


def test_partition_key_of_1500_bytes_is_migrated_whatever_the_yaml_order() -> None:
    item = {"customerId": {"S": "c" * 1500}, "orderId": {"S": "o1"}}
    target = REVERSED.transform(item)
    assert len(target["PK"]["S"]) == 1509


def test_sort_key_over_1024_bytes_is_quarantined_whatever_the_yaml_order() -> None:
    item = {"customerId": {"S": "c1"}, "orderId": {"S": "o" * 1020}}
    with pytest.raises(UnmappableError, match="SK is 1026 bytes, over DynamoDB's 1024"):
        REVERSED.transform(item)


def test_a_table_keyed_the_other_way_gets_the_limits_the_other_way() -> None:
    sk_first = build_mapping(SPEC, SOURCE, KeySchema((("SK", "S"), ("PK", "S"))))
    assert sk_first.target_key.names == ("SK", "PK")
    sk_first.transform({"customerId": {"S": "c1"}, "orderId": {"S": "o" * 1500}})
    with pytest.raises(UnmappableError, match="PK is 1509 bytes"):
        sk_first.transform({"customerId": {"S": "c" * 1500}, "orderId": {"S": "o1"}})


def test_a_target_of_other_attributes_leaves_the_files_order_for_fits_key_to_refuse() -> None:
    other = build_mapping(SPEC, SOURCE, KeySchema((("id", "S"),)))
    assert other.target_key.names == ("SK", "PK")
    assert not other.fits_key(KeySchema((("id", "S"),)))
