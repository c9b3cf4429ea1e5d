"""`plan`'s backfill estimate and `backfill`'s retention refusal, through the real command."""

from __future__ import annotations

import pytest

from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration
from dualwrite.control import ControlStore, Phase
from dualwrite.estimate import units
from dualwrite.wire import item_size
from tests.conftest import MIGRATIONS, Cli
from tests.functional.test_backfill_support import expected_target, prepare, seed

pytestmark = pytest.mark.e2e
CONFIG = MIGRATIONS / "coretable.yaml"
KEYS = ("items", "bytes", "write_units", "read_units", "backfill_seconds", "cost_usd")


def test_plan_estimates_each_route_from_its_mapped_items(
    cli: Cli, emulator_clients: Clients
) -> None:
    migration = load_migration(CONFIG)
    data = seeding.generate(40, 120, seed=3)
    seed(emulator_clients, data.servers, data.memberships)
    result = cli.run(CONFIG, "plan", "--json")
    assert result.code == 0, result.stderr
    estimates = {r["route"]: r["estimate"] for r in result.json()["routes"]}
    for route, items in (("servers", data.servers), ("memberships", data.memberships)):
        est = estimates[route]
        assert set(KEYS) <= set(est)
        # small tables: the sampled page is the whole table, whatever DescribeTable says
        assert est["exact"] and est["items"] == len(items)
        assert est["bytes"] == sum(item_size(it) for it in items)
        # every CoreTable item lands in GSI1 too (its keys are the table's, projection ALL)
        expected = expected_target(emulator_clients, migration, [route])
        assert est["write_units"] == sum(2 * units(item_size(it)) for it in expected.values())
        assert est["backfill_seconds"] == pytest.approx(est["write_units"] / 40_000, abs=0.1)
        assert est["cost_usd"] == pytest.approx(
            est["write_units"] * 0.625e-6 + est["read_units"] * 0.125e-6, abs=1e-6
        )
    budgeted = cli.run(CONFIG, "plan", "--json", "--max-wcu", "2").json()
    servers = next(r["estimate"] for r in budgeted["routes"] if r["route"] == "servers")
    assert servers["backfill_seconds"] == pytest.approx(servers["write_units"] / 2, abs=0.1)
    human = cli.run(CONFIG, "plan")
    assert human.code == 0 and "backfill estimate" in human.stdout


def test_backfill_refuses_when_its_estimate_outlasts_the_streams_retention(
    cli: Cli, emulator_clients: Clients
) -> None:
    migration = load_migration(CONFIG)
    data = seeding.generate(10, 120, seed=3)
    seed(emulator_clients, data.servers, data.memberships)
    prepare(emulator_clients, migration)
    # ~300 write units at 0.001 WCU/s: days, over 80% of 24 h
    result = cli.run(CONFIG, "backfill", "--route", "memberships", "--max-wcu", "0.001", "--json")
    assert result.code == 4, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert " h (" in line and "--max-wcu to at least" in line and "state machine" in line
    assert result.json()["refused"] is True
    # nothing was copied or started
    ddb = emulator_clients.dynamodb
    assert ddb.scan(TableName="CoreTable", Select="COUNT")["Count"] == 0
    store = ControlStore(ddb, migration.control_table)
    assert store.phase("memberships").phase != Phase.BACKFILLING
    assert list(store.query("RISK#RETENTION")) == []
