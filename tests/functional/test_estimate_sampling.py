"""The estimate's sampling adapter (dualwrite.aws.sampling) on moto."""

from __future__ import annotations

from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.aws.sampling import EXTRAPOLATION_SEGMENTS, estimate_route, extrapolated_items
from dualwrite.config import load_migration
from tests.conftest import MIGRATIONS
from tests.functional.test_backfill_support import seed


def test_a_table_bigger_than_the_sample_is_counted_from_one_segment(
    moto_clients: Clients,
) -> None:
    data = seeding.generate(50, 4000, seed=11)
    seed(moto_clients, [], data.memberships)
    ddb = moto_clients.dynamodb
    segment0 = ddb.scan(
        TableName=seeding.MEMBERSHIPS_TABLE, Segment=0, TotalSegments=EXTRAPOLATION_SEGMENTS
    )
    assert "LastEvaluatedKey" not in segment0
    counted = extrapolated_items(ddb, seeding.MEMBERSHIPS_TABLE)
    assert counted == segment0["Count"] * EXTRAPOLATION_SEGMENTS
    assert 4000 / 2 < counted < 4000 * 2  # segments split the key space about evenly


def test_estimate_route_scales_a_partial_sample_to_the_table(moto_clients: Clients) -> None:
    migration = load_migration(MIGRATIONS / "coretable.yaml")
    data = seeding.generate(10, 2500, seed=11)
    seed(moto_clients, data.servers, data.memberships)
    est = estimate_route(moto_clients, migration, migration.route("memberships"))
    assert not est.exact and est.sampled_items == 1000
    assert est.items == 2500  # moto's ItemCount is current: more than the sample saw
    # each membership and each derived User item, once in CoreTable and once in GSI1
    assert 2 * 2500 <= est.write_units <= 2 * (2500 + 2500 // 3 + 1) * 1.1
