"""`plan` with `cutover.discover: true` leaves out of its references the functions the
cutover re-points, as `cutover --dry-run` does (it listed them as writers left on the old
table: plan passed only the listed functions, none with discover)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dualwrite.config import parse_migration
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.references import LAMBDA_FUNCTION
from dualwrite.cutover.switch import CutoverRequest, cutover
from dualwrite.prepare import references
from tests.cutover_world import FakeClock
from tests.functional.test_cutover_kills import world


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def test_plan_and_the_dry_run_agree_on_what_is_re_pointed(moto: None) -> None:
    c, _ = world()
    migration = parse_migration(
        {
            "control_table": "ctl",
            "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
            "cutover": {"functions": [], "discover": True, "watch_seconds": 0},
        }
    )
    clock = FakeClock()
    ctx = CutoverContext.open(
        migration, c, clock=lambda: clock.now().timestamp(), sleep=clock.sleep
    )
    dry = cutover(ctx, CutoverRequest(dry_run=True))
    assert [p.function for p in dry.plans] == ["api"]
    assert [r for r in dry.to_json()["references"] if r["kind"] == LAMBDA_FUNCTION] == []

    found = references(migration, c).references
    assert [r for r in found if r.kind == LAMBDA_FUNCTION] == []
    # what is not a function still counts
    assert {r.kind for r in found} >= {"cloudwatch_alarm", "ssm_parameter"}
