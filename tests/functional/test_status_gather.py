"""`status` gathering: phases, checkpoints, shard positions, event source mappings,
quarantine without item contents, last reconcile, and parity metrics read back from
CloudWatch (in-process moto)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.control import ControlStore, Phase, SegmentState, ShardCheckpoint
from dualwrite.status import gather
from reconciler.job import run_reconcile
from tests.functional.test_reconcile_support import TARGET, build_core, by_route, server_key


def _mapping_for(clients: Clients, stream_arn: str) -> None:
    role = clients.client("iam").create_role(RoleName="replicator", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    clients.lambda_.create_function(
        FunctionName="replicator",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )
    clients.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn,
        FunctionName="replicator",
        StartingPosition="TRIM_HORIZON",
        Enabled=False,
    )


def test_status_shows_every_route_and_reads_parity_metrics_back(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=6, memberships=9)
    desc = tables.describe(moto_clients.dynamodb, "ServersTable")
    assert desc is not None
    stream = str(desc["LatestStreamArn"])
    _mapping_for(moto_clients, stream)
    store.set_phase("servers", Phase.BACKFILLED, backfill_started_at=1767225600.0)
    # an abandoned 2-segment run, then the current 4-segment one
    for seg in range(2):
        store.save_segment(
            SegmentState.from_json(
                {
                    "route": "servers",
                    "segment": seg,
                    "total": 2,
                    "done": False,
                    "items_read": 1,
                    "items_written": 1,
                    "updated_at": 1.0,
                }
            )
        )
    for seg in range(4):
        store.save_segment(
            SegmentState.from_json(
                {
                    "route": "servers",
                    "segment": seg,
                    "total": 4,
                    "last_key": None,
                    "done": seg < 3,
                    "items_read": 10 + seg,
                    "items_written": 9 + seg,
                    "quarantined": 1 if seg == 0 else 0,
                    "started_at": 5.0,
                    "updated_at": 10.0 + seg,
                }
            )
        )
    store.save_shard(
        ShardCheckpoint(
            stream_arn=stream,
            shard_id="shard-parent",
            route="servers",
            parent_shard_id=None,
            sequence_number="100",
            done=True,
            records=7,
            lag_ms=99999,
            caught_up_at=None,
        )
    )
    store.save_shard(
        ShardCheckpoint(
            stream_arn=stream,
            shard_id="shard-child",
            route="servers",
            parent_shard_id="shard-parent",
            sequence_number="205",
            done=False,
            records=3,
            lag_ms=250,
            caught_up_at=1700000000.0,
        )
    )
    secret = "private.person@example.com"
    store.quarantine(
        "memberships",
        "membership has no role",
        {"userId": {"S": "u9"}, "serverId": {"S": "s1"}, "email": {"S": secret}},
        source="backfill",
    )

    run_reconcile(migration, moto_clients, store, settle_s=0).to_json()  # parity: 100 published
    moto_clients.dynamodb.delete_item(TableName=TARGET, Key=server_key(data.servers[0]["id"]["S"]))
    drift = by_route(run_reconcile(migration, moto_clients, store, settle_s=0).to_json())["servers"]
    assert drift["missing"] == 1

    report = gather(migration, moto_clients, store)
    typed = {r.route: r for r in report.routes}["servers"]
    assert typed.replication.lag_ms == 250 and typed.backfill.segments_done == 3
    assert typed.last_reconcile is not None and typed.last_reconcile.missing == 1
    status = report.to_json()
    assert secret not in json.dumps(status)
    assert status["quarantined"] == 1
    assert status["quarantine"][0]["reason"] == "membership has no role"
    routes: dict[str, Any] = {r["route"]: r for r in status["routes"]}
    servers = routes["servers"]
    assert (servers["source"], servers["target"], servers["phase"]) == (
        "ServersTable",
        TARGET,
        "backfilled",
    )
    assert servers["backfill"]["segments"] == 4
    assert servers["backfill"]["segments_done"] == 3
    assert servers["backfill"]["items_written"] == 9 + 10 + 11 + 12
    assert len(servers["backfill"]["checkpoints"]) == 4
    rep = servers["replication"]
    assert rep["stream_arn"] == stream
    assert [s["shard_id"] for s in rep["shards"]] == ["shard-child", "shard-parent"]
    assert rep["lag_ms"] == 250  # a finished parent has no lag
    assert rep["position"] == {"shard-child": "205"}
    assert [m["state"] for m in servers["event_source_mappings"]] == ["Disabled"]
    assert servers["last_reconcile"]["parity"] is False
    assert servers["last_reconcile"]["missing"] == 1
    assert routes["memberships"]["phase"] == "pending"
    assert routes["memberships"]["quarantined"] == 1
    assert routes["memberships"]["backfill"]["segments"] == 0
    # the latest minute holds both runs: the dashboard's worst value is the drift run's
    metrics = servers["metrics"]
    assert metrics["ParityPercent"] == drift["parity_percent"] < 100
    assert metrics["ParityMissing"] == 1.0
    assert metrics["ParityExtra"] == 0.0
    assert routes["memberships"]["metrics"]["ParityPercent"] == 100.0
    assert servers["metrics_at"]["ParityPercent"]


def test_status_before_anything_ran(moto_clients: Clients) -> None:
    migration, store, _ = build_core(moto_clients, servers=2, memberships=2)
    status = gather(migration, moto_clients, store).to_json()
    assert status["quarantined"] == 0 and status["quarantine"] == []
    for r in status["routes"]:
        assert r["last_reconcile"] is None
        assert r["metrics"]["ParityPercent"] is None
        assert r["replication"]["shards"] == [] and r["replication"]["lag_ms"] is None
        assert r["event_source_mappings"] == []


def test_status_before_prepare_says_so(moto_clients: Clients) -> None:
    from dualwrite import seed as seeding
    from tests.functional.test_reconcile_support import core

    seeding.ensure_tables(moto_clients)
    migration = core()
    store = ControlStore(moto_clients, migration.control_table)
    status = gather(migration, moto_clients, store).to_json()
    assert any("prepare" in note for note in status["notes"])
    assert [r["phase"] for r in status["routes"]] == ["pending", "pending"]
    assert status["quarantined"] == 0
