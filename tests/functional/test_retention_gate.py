"""backfill's retention gate (cmd_backfill.retention_gate) on moto: refused, or accepted and
journaled in the control table."""

from __future__ import annotations

import pytest

from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.cli.cmd_backfill import RISK_PK, retention_gate
from dualwrite.cli.context import AppContext
from dualwrite.errors import SafetyGateError
from tests.conftest import MIGRATIONS
from tests.functional.test_backfill_support import prepare, seed

CONFIG = MIGRATIONS / "coretable.yaml"


@pytest.fixture
def app(moto_clients: Clients) -> AppContext:
    ctx = AppContext(CONFIG, endpoint_url=None, region="us-east-1")
    ctx.clients = moto_clients  # the cached property, on the mocked clients
    data = seeding.generate(40, 60, seed=5)  # both routes: days at 0.001 WCU/s
    seed(moto_clients, data.servers, data.memberships)
    prepare(moto_clients, ctx.migration)
    return ctx


def test_an_estimate_within_the_retention_passes_without_a_journal_entry(app: AppContext) -> None:
    assert retention_gate(app, None, None, accept=False) == []
    assert retention_gate(app, "memberships", 1000, accept=True) == []
    assert list(app.store.query(RISK_PK)) == []


def test_over_the_retention_it_refuses_with_exit_4(app: AppContext) -> None:
    with pytest.raises(SafetyGateError) as refused:
        retention_gate(app, "memberships", 0.001, accept=False)
    assert refused.value.exit_code == 4
    message = str(refused.value)
    assert message.startswith("backfill refused: route memberships: the backfill would take")
    assert "--max-wcu to at least 1" in message


def test_an_accepted_risk_is_journaled_with_its_estimate(app: AppContext) -> None:
    assert retention_gate(app, None, 0.001, accept=True) == ["memberships", "servers"]
    records = list(app.store.query(RISK_PK))
    assert sorted(r.data["route"] for r in records) == ["memberships", "servers"]
    for record in records:
        assert record.data["action"] == "accept-retention-risk"
        assert record.data["max_wcu"] == 0.001
        est = record.data["estimate"]
        assert est["backfill_seconds"] > 0.8 * 24 * 3600
        assert record.sk.endswith(f"#{record.data['route']}")
