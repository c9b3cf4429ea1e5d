"""The scheduled reconciler: time-budgeted slices with a checkpoint in the control table,
and the Lambda entry point emitting EMF (in-process moto)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from dualwrite.aws.clients import Clients
from reconciler.job import run_reconcile
from reconciler.scheduled import RUN_PK, RUN_SK, load_run, run_slice
from tests.functional.test_reconcile_support import (
    CORE_FILE,
    TARGET,
    build_core,
    by_route,
    counts,
    server_key,
    user_key,
    users_with_memberships,
)

KEYS = ("source_items", "expected_target_items", "target_items", "quarantined")


def _plant(clients: Clients, data: Any) -> None:
    ddb = clients.dynamodb
    ddb.delete_item(TableName=TARGET, Key=server_key(data.servers[0]["id"]["S"]))
    user = sorted(users_with_memberships(data))[1]
    ddb.update_item(
        TableName=TARGET,
        Key=user_key(user),
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": {"S": "wrong@example.com"}},
    )
    ddb.put_item(TableName=TARGET, Item={**user_key("nobody"), "Type": {"S": "User"}})


def test_slices_resume_from_their_checkpoint_and_judge_exactly_once(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=9, memberships=30)
    _plant(moto_clients, data)
    whole = by_route(
        run_reconcile(
            migration, moto_clients, store, settle_s=0, publish_metrics=False, segments=2
        ).to_json()
    )
    slices = 0
    summary: dict[str, Any] = {}
    while True:
        slices += 1
        # every unit stops after each page: many slices, groups cut at every page boundary
        summary = run_slice(
            migration,
            moto_clients,
            store,
            should_stop=lambda: True,
            segments=2,
            page_size=3,
            settle_s=0,
        ).to_json()
        if summary["complete"]:
            break
        run = load_run(store)
        assert run is not None and run.slices == slices
        assert slices < 100
    assert slices > 3
    assert store.get(RUN_PK, RUN_SK) is None  # a finished run leaves no checkpoint behind
    sliced = by_route(summary)
    for name in ("servers", "memberships"):
        assert {k: sliced[name][k] for k in KEYS} == {k: whole[name][k] for k in KEYS}
        assert counts(sliced[name]) == counts(whole[name])
        saved = store.last_reconcile(name)
        assert saved is not None and saved.mode == "scheduled"
        assert saved.parity is False and saved.at > 0
    assert counts(sliced["servers"]) == (1, 0, 0)
    assert counts(sliced["memberships"]) == (0, 1, 1)
    assert sliced["memberships"]["expected_target_items"] == len(data.memberships) + len(
        users_with_memberships(data)
    )


def _one_page_slice(migration: Any, clients: Clients, store: Any) -> dict[str, Any]:
    """A first slice that pauses after one page of each unit (2 segments)."""
    return run_slice(
        migration, clients, store, should_stop=lambda: True, segments=2, page_size=2, settle_s=0
    ).to_json()


def test_a_run_planned_for_other_segments_starts_over(moto_clients: Clients) -> None:
    migration, store, _ = build_core(moto_clients, servers=6, memberships=9)
    first = _one_page_slice(migration, moto_clients, store)
    assert first["complete"] is False
    second = run_slice(
        migration, moto_clients, store, should_stop=lambda: False, segments=3, settle_s=0
    ).to_json()
    assert second["complete"] is True and second["slices"] == 1
    assert second["run_id"] != first["run_id"]
    assert second["parity"] is True


def test_a_run_saved_with_another_digest_format_starts_over(moto_clients: Clients) -> None:
    migration, store, _ = build_core(moto_clients, servers=6, memberships=9)
    first = _one_page_slice(migration, moto_clients, store)
    assert first["complete"] is False and load_run(store) is not None
    rec = store.get(RUN_PK, RUN_SK)
    assert rec is not None
    store.put(RUN_PK, RUN_SK, {**rec.data, "digest_format": 1})  # as an older version saved it
    assert load_run(store) is None
    second = run_slice(
        migration, moto_clients, store, should_stop=lambda: False, segments=2, settle_s=0
    ).to_json()
    assert second["complete"] is True and second["slices"] == 1
    assert second["run_id"] != first["run_id"] and second["parity"] is True


def _value(emf: Any) -> float:
    """EMF carries a metric as a number or a list of them."""
    values = emf if isinstance(emf, list) else [emf]
    assert len(values) == 1
    return float(values[0])


@dataclass
class FakeContext:
    function_name: str = "dualwrite-reconciler"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:reconciler"
    aws_request_id: str = "req-1"
    remaining_ms: int = 600_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_the_lambda_checks_parity_and_emits_emf_per_route(
    moto_clients: Clients, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    migration, store, data = build_core(moto_clients, servers=5, memberships=9)
    moto_clients.dynamodb.delete_item(TableName=TARGET, Key=server_key(data.servers[1]["id"]["S"]))
    monkeypatch.setenv("DUALWRITE_CONFIG", str(CORE_FILE))
    from reconciler.handler import lambda_handler

    capsys.readouterr()
    summary = lambda_handler({"settle_s": 0}, FakeContext())
    assert summary["complete"] is True and summary["parity"] is False
    assert counts(by_route(summary)["servers"]) == (1, 0, 0)
    assert json.loads(json.dumps(summary)) == summary  # a Lambda result is JSON
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_dimension = {b["Route"]: b for b in blobs}
    assert set(by_dimension) == {"servers", "memberships"}
    servers = by_dimension["servers"]
    directive = servers["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == migration.metrics_namespace
    assert directive["Dimensions"] == [["Route"]]  # what the alarms and the dashboard read
    assert _value(servers["ParityMissing"]) == 1.0
    assert _value(servers["ParityPercent"]) < 100.0
    assert _value(by_dimension["memberships"]["ParityPercent"]) == 100.0
    saved = store.last_reconcile("servers")
    assert saved is not None and saved.parity is False


def test_the_lambda_needs_its_config(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    monkeypatch.delenv("DUALWRITE_CONFIG", raising=False)
    from dualwrite.errors import ConfigError
    from reconciler.handler import lambda_handler

    with pytest.raises(ConfigError):
        lambda_handler({}, FakeContext())
