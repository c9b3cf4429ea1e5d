"""The backfill estimate's arithmetic (dualwrite.estimate), on wire-format items."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.aws.tables import declared_definition
from dualwrite.config import load_migration, parse_migration
from dualwrite.errors import ConfigError
from dualwrite.estimate import (
    DEFAULT_TABLE_WRITE_UNITS,
    IndexShape,
    Prices,
    Sample,
    count_is_stale,
    estimate,
    index_entry,
    indexes_of,
    over_retention,
    refusal,
    sample_of,
    units,
    wcu_to_fit,
    write_budget,
    write_units_of,
)
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.wire import item_size
from tests.conftest import MIGRATIONS

GSI1 = IndexShape("GSI1", ("SK", "PK"), "ALL")
TABLE_KEY = ("PK", "SK")


def padded(pk: str, size: int, **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    item = {"PK": {"S": pk}, "SK": {"S": "METADATA"}, **extra}
    item["pad"] = {"S": "x" * (size - item_size(item) - 3)}  # 3: the name "pad"
    assert item_size(item) == size
    return item


def test_a_write_costs_one_unit_per_started_kilobyte() -> None:
    assert [units(n) for n in (0, 1, 1024, 1025, 2048, 400 * 1024)] == [1, 1, 1, 2, 2, 400]


def test_a_write_costs_again_in_every_index_the_item_lands_in() -> None:
    item = padded("SERVER#1", 1500)
    assert write_units_of(item, TABLE_KEY, []) == 2
    assert write_units_of(item, TABLE_KEY, [GSI1]) == 4
    # an index whose key the item lacks holds nothing of it
    sparse = IndexShape("ByOwner", ("ownerId",), "ALL")
    assert write_units_of(item, TABLE_KEY, [GSI1, sparse]) == 4
    # a KEYS_ONLY index entry is the keys alone: one unit
    keys_only = IndexShape("Keys", ("SK", "PK"), "KEYS_ONLY")
    assert index_entry(item, TABLE_KEY, keys_only) == {"PK": item["PK"], "SK": item["SK"]}
    assert write_units_of(item, TABLE_KEY, [keys_only]) == 3
    include = IndexShape("Inc", ("SK",), "INCLUDE", ("pad",))
    assert set(index_entry(item, TABLE_KEY, include) or {}) == {"PK", "SK", "pad"}


@given(st.integers(min_value=10, max_value=20_000), st.integers(min_value=0, max_value=3))
def test_write_units_grow_with_size_and_indexes(size: int, n_indexes: int) -> None:
    item = padded("X", max(size, 30))
    indexes = [IndexShape(f"I{i}", ("SK", "PK"), "ALL") for i in range(n_indexes)]
    assert write_units_of(item, TABLE_KEY, indexes) == (1 + n_indexes) * units(item_size(item))


def test_indexes_of_the_declared_core_table() -> None:
    migration = load_migration(MIGRATIONS / "coretable.yaml")
    definition = declared_definition("CoreTable", migration.targets["CoreTable"])
    assert indexes_of(definition) == [GSI1]
    assert write_budget(definition, None) == DEFAULT_TABLE_WRITE_UNITS


def test_the_write_budget_is_the_tables_limit_or_a_lower_max_wcu() -> None:
    on_demand = {
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ProvisionedThroughput": {"WriteCapacityUnits": 0},
    }
    assert write_budget(on_demand, None) == DEFAULT_TABLE_WRITE_UNITS
    assert write_budget(on_demand, 250) == 250
    capped = {**on_demand, "OnDemandThroughput": {"MaxWriteRequestUnits": 1000}}
    assert write_budget(capped, None) == 1000
    assert write_budget(capped, 5000) == 1000
    provisioned = {"ProvisionedThroughput": {"WriteCapacityUnits": 50}}
    assert write_budget(provisioned, None) == 50
    assert write_budget(None, None) == DEFAULT_TABLE_WRITE_UNITS


def test_a_sample_is_mapped_through_the_route_quarantined_items_left_out() -> None:
    servers = build_mapping("servers", KeySchema((("id", "S"),)))
    items = [{"id": {"S": f"s{i}"}, "name": {"S": "n"}} for i in range(3)]
    items.append({"id": {"S": "bad"}, "PK": {"S": "clash"}})  # quarantined
    sample = sample_of(items, servers, [GSI1], complete=True)
    assert (sample.source_items, sample.target_items) == (4, 3)
    assert sample.write_units == 3 * 2
    assert sample.source_bytes == sum(item_size(it) for it in items)


def test_a_sample_of_memberships_counts_the_derived_user_items() -> None:
    memberships = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))
    items = [
        {"userId": {"S": f"u{u}"}, "serverId": {"S": f"s{s}"}, "role": {"S": "viewer"}}
        for u in range(2)
        for s in range(3)
    ]
    sample = sample_of(items, memberships, [], complete=True)
    assert sample.target_items == 6 + 2  # a membership each, and one User per user


def test_the_estimate_scales_the_sample_to_the_described_item_count() -> None:
    sample = Sample(source_items=100, source_bytes=200_000, target_items=100, write_units=300,
                    complete=False)  # fmt: skip
    est = estimate(sample, described_items=1000, described_bytes=5, budget=10.0)
    assert (est.items, est.bytes, est.write_units) == (1000, 2_000_000, 3000)
    assert est.read_units == math.ceil(2_000_000 / 4096 / 2)
    assert est.backfill_seconds == 300.0
    assert est.cost_usd == pytest.approx(3000 * 0.625e-6 + est.read_units * 0.125e-6, abs=1e-6)
    assert not est.exact


def test_a_sample_that_saw_the_whole_table_is_exact_whatever_describe_says() -> None:
    # emulators (and new tables) describe 0 items and 0 bytes
    sample = Sample(40, 8000, 40, 80, complete=True)
    est = estimate(sample, described_items=0, described_bytes=0, budget=40_000)
    assert (est.items, est.bytes, est.write_units, est.exact) == (40, 8000, 80, True)
    # a stale count lower than what the page already showed is corrected upwards
    partial = Sample(1000, 10_000, 1000, 1000, complete=False)
    assert estimate(partial, described_items=10, described_bytes=0, budget=1).items == 1000


def test_prices_come_from_the_migration_files_pricing_block() -> None:
    base = {"routes": [{"name": "a", "source": "Src", "target": "Tgt", "mapping": "identity"}]}
    assert parse_migration(base).pricing.prices() == Prices()
    custom = parse_migration({**base, "pricing": {"write_usd_per_million": 1.25}}).pricing
    assert custom.prices() == Prices(1.25, Prices().read_usd_per_million)
    est = estimate(Sample(1, 1, 1, 1_000_000, True), described_items=0, described_bytes=0,
                   budget=1, prices=custom.prices())  # fmt: skip
    assert est.cost_usd == pytest.approx(1.25)
    with pytest.raises(ConfigError, match=r"pricing\.read_usd_per_million"):
        parse_migration({**base, "pricing": {"read_usd_per_million": -1}})
    with pytest.raises(ConfigError, match=r"pricing\.colour: unknown key"):
        parse_migration({**base, "pricing": {"colour": 1}})


def test_retention_refusal_says_how_long_and_what_would_fit() -> None:
    day = 86_400
    writes = 2 * day * 100  # two days at 100 WCU/s
    est = estimate(Sample(10, 10, 10, writes, True), described_items=0, described_bytes=0,
                   budget=100)  # fmt: skip
    assert over_retention(est)
    assert wcu_to_fit(est) == math.ceil(writes / (0.8 * day))
    line = refusal("memberships", est)
    assert "\n" not in line
    assert "48.0 h" in line and f"--max-wcu to at least {wcu_to_fit(est):,}" in line
    assert "state machine" in line and "--accept-retention-risk" in line
    fits = estimate(Sample(10, 10, 10, writes, True), described_items=0, described_bytes=0,
                    budget=wcu_to_fit(est))  # fmt: skip
    assert not over_retention(fits)


def test_a_count_no_bigger_than_an_unfinished_sample_is_stale() -> None:
    partial = Sample(1000, 10_000, 1000, 1000, complete=False)
    assert count_is_stale(partial, 0) and count_is_stale(partial, 1000)
    assert not count_is_stale(partial, 1001)
    assert not count_is_stale(Sample(10, 10, 10, 10, complete=True), 0)
