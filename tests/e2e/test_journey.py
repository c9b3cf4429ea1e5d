"""The user journey through the real `dualwrite` command: live traffic while the backfill
runs with the replicator running before, during and after it; a replicator killed mid-run;
throttling and 5xx injected between the tool and the emulator; a poison record.

Every test ends the same way: the target equals the mapping of the sources exactly, checked
independently of the reconciler (tests/parity.py), and the reconciler agrees.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

from dualwrite.aws.clients import Clients
from dualwrite.aws.tables import wait_until
from dualwrite.config import load_migration
from dualwrite.control import ControlStore, ShardCheckpoint
from dualwrite.seed import MEMBERSHIPS_TABLE, generate
from dualwrite.traffic import TrafficPlan, TrafficStats, run_traffic
from tests.conftest import MIGRATIONS, Cli
from tests.faultproxy import FaultProxy
from tests.parity import parity_problems

CORE = MIGRATIONS / "coretable.yaml"
MIGRATION = load_migration(CORE)
SERVERS, MEMBERSHIPS = 60, 180


def _setup(cli: Cli) -> TrafficPlan:
    seeded = cli.run(CORE, "seed", "--servers", str(SERVERS), "--memberships", str(MEMBERSHIPS))
    assert seeded.code == 0, seeded.stderr
    prepared = cli.run(CORE, "prepare", "--no-backup")
    assert prepared.code == 0, prepared.stderr
    return TrafficPlan(generate(SERVERS, MEMBERSHIPS, 1), seed=7)


def _traffic(clients: Clients, plan: TrafficPlan, ops: int) -> TrafficStats:
    return run_traffic(clients.dynamodb, plan, threading.Event(), rate=10_000, max_ops=ops)


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _assert_parity(cli: Cli, clients: Clients) -> None:
    caught_up = cli.run(CORE, "replicate", "--until-caught-up", "--json")
    assert caught_up.code == 0, caught_up.stderr
    assert caught_up.json()["failed"] == 0
    assert parity_problems(clients.dynamodb, MIGRATION) == []
    reconciled = cli.run(CORE, "reconcile", "--json")
    assert reconciled.code == 0, reconciled.stdout + reconciled.stderr
    assert reconciled.json()["parity"] is True


def test_live_traffic_with_the_replicator_before_during_and_after_the_backfill(
    cli: Cli, emulator_clients: Clients
) -> None:
    plan = _setup(cli)
    replicator = cli.start(CORE, "replicate", "--poll-interval", "0.2")
    try:
        before = _traffic(emulator_clients, plan, 40)  # changes the replicator must hold
        stop = threading.Event()
        during = TrafficStats()
        writer = threading.Thread(
            target=run_traffic,
            args=(emulator_clients.client("dynamodb"), plan, stop),
            kwargs={"rate": 40.0, "stats": during},
        )
        writer.start()
        try:
            backfilled = cli.run(CORE, "backfill", "--segments", "2", "--json")
        finally:
            stop.set()
            writer.join()
        assert backfilled.code == 0, backfilled.stderr
        assert [r["route"] for r in backfilled.json()["routes"]] == ["servers", "memberships"]
        after = _traffic(emulator_clients, plan, 40)  # applied live, after the backfill
    finally:
        code, _out, err = _stop(replicator)
    assert code == 0, err
    assert before.ops and during.ops and after.ops
    assert before.deletes + during.deletes + after.deletes > 0
    _assert_parity(cli, emulator_clients)


def test_replicator_killed_mid_run_restarts_from_its_checkpoints(
    cli: Cli, emulator_clients: Clients
) -> None:
    plan = _setup(cli)
    assert cli.run(CORE, "backfill").code == 0
    store = ControlStore(emulator_clients.dynamodb, MIGRATION.control_table)
    replicator = cli.start(CORE, "replicate", "--poll-interval", "0.2")
    try:
        _traffic(emulator_clients, plan, 150)

        def checkpointed() -> bool:
            shards = [
                s for r in MIGRATION.routes for s in _shards(emulator_clients, store, r.source)
            ]
            return any(s.records for s in shards)

        wait_until(checkpointed, "a replication checkpoint", timeout=120, interval=0.05)
    finally:
        code, _out, _err = _stop(replicator, signal.SIGKILL)
    assert code == -signal.SIGKILL
    _traffic(emulator_clients, plan, 60)  # more changes while it is down
    _assert_parity(cli, emulator_clients)


def _shards(clients: Clients, store: ControlStore, table: str) -> list[ShardCheckpoint]:
    desc = clients.dynamodb.describe_table(TableName=table)["Table"]
    return list(store.shards(desc["LatestStreamArn"]))


def test_throttling_and_server_errors_between_the_tool_and_the_emulator(
    cli: Cli, emulator: str, emulator_clients: Clients, tmp_path: Path
) -> None:
    plan = _setup(cli)
    _traffic(emulator_clients, plan, 40)
    operations = frozenset(
        {
            "BatchWriteItem",
            "Scan",
            "GetRecords",
            "GetShardIterator",
            "BatchGetItem",
            "Query",
            "PutItem",
        }
    )
    with FaultProxy(emulator, operations=operations, every=3) as proxy:
        faulty = Cli(proxy.endpoint)
        backfilled = faulty.run(CORE, "backfill", "--segments", "2", "--json")
        assert backfilled.code == 0, backfilled.stderr
        _traffic(emulator_clients, plan, 40)
        replicated = faulty.run(CORE, "replicate", "--until-caught-up", "--json")
        assert replicated.code == 0, replicated.stderr
        reconciled = faulty.run(CORE, "reconcile", "--json")
        assert reconciled.code == 0, reconciled.stdout + reconciled.stderr
        injected = dict(proxy.faults)
    assert any(k.startswith("BatchWriteItem:") for k in injected), injected
    assert any(k.startswith("GetRecords:") for k in injected), injected
    assert any(k.endswith(":400") for k in injected) and any(k.endswith(":500") for k in injected)
    assert parity_problems(emulator_clients.dynamodb, MIGRATION) == []


def test_a_poison_record_is_quarantined_counted_and_blocks_cutover(
    cli: Cli, emulator_clients: Clients
) -> None:
    plan = _setup(cli)
    assert cli.run(CORE, "backfill").code == 0
    _traffic(emulator_clients, plan, 20)
    emulator_clients.dynamodb.put_item(
        TableName=MEMBERSHIPS_TABLE,
        Item={
            "userId": {"S": "user-poison"},
            "serverId": {"S": "srv-000001"},
            "email": {"S": "poison@example.com"},
        },  # no role: must not be guessed
    )
    _traffic(emulator_clients, plan, 20)  # good records after the poison one still flow
    replicated = cli.run(CORE, "replicate", "--until-caught-up", "--json")
    assert replicated.code == 0, replicated.stderr
    assert replicated.json()["quarantined"] == 1
    status = cli.run(CORE, "status", "--json")
    assert status.code == 0, status.stderr
    assert status.json()["quarantined"] == 1
    assert "poison@example.com" not in status.stdout + status.stderr  # no personal data
    assert parity_problems(emulator_clients.dynamodb, MIGRATION) == []
    reconciled = cli.run(CORE, "reconcile", "--json")
    [members] = [r for r in reconciled.json()["routes"] if r["route"] == "memberships"]
    assert members["quarantined"] == 1 and members["missing"] == 0
    gate = cli.run(CORE, "cutover", "--json")
    assert gate.code == 4
    assert "quarantine" in gate.stdout.lower()
