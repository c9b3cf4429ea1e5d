"""The Step Functions workers (backfill.worker) against in-process moto."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backfill import worker
from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.control import ControlStore, Phase
from dualwrite.errors import BackfillIncompleteError, ConfigError
from dualwrite.runtime import Runtime
from dualwrite.wire import Item
from tests.functional.test_backfill_support import (
    CORETABLE,
    assert_exact,
    coretable,
    expected_target,
    prepare,
    scan_all,
    seed,
)


class FakeContext:
    """A Lambda context whose remaining time is whatever the test says."""

    function_name = "backfill-worker"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:backfill-worker"
    aws_request_id = "req-1"

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_env(
    moto_clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Clients]:
    config = tmp_path / "migration.json"  # JSON is YAML
    config.write_text(json.dumps(CORETABLE))
    monkeypatch.setenv("DUALWRITE_CONFIG", str(config))
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "DualWrite")
    yield moto_clients


@pytest.fixture
def rt(lambda_env: Clients) -> Runtime:
    """The container's runtime, given to the handlers (its checks run at first use)."""
    return Runtime(coretable(), lambda_env)


def big_servers(n: int) -> list[Item]:
    return [{"id": {"S": f"srv-{i:03d}"}, "blob": {"S": "b" * 240_000}} for i in range(n)]


def test_import_reads_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.delenv("DUALWRITE_CONFIG", raising=False)
    importlib.reload(worker)
    with pytest.raises(ConfigError, match="DUALWRITE_CONFIG"):
        worker.lambda_handler(
            {"route": "servers", "segment": 0, "total_segments": 1}, FakeContext(900_000)
        )


def test_a_worker_short_of_time_pauses_and_the_next_call_continues(
    lambda_env: Clients, rt: Runtime
) -> None:
    clients = lambda_env
    seed(clients, big_servers(10), [])
    migration = coretable()
    prepare(clients, migration)
    store = ControlStore(clients.dynamodb, migration.control_table)

    planned = worker.plan_handler(
        {"route": "servers", "total_segments": 1}, FakeContext(900_000), runtime=rt
    )
    assert planned == {
        "route": "servers",
        "total_segments": 1,
        "segments": [{"route": "servers", "segment": 0, "total_segments": 1}],
        "routes": [{"route": "servers", "total_segments": 1}],
    }
    assert store.phase("servers").phase == Phase.BACKFILLING

    item = planned["segments"][0]
    short = FakeContext(5_000)  # under the 30 s safety margin: one page per call
    results = [worker.lambda_handler(item, short, runtime=rt)]
    saved = store.segment("servers", 0, 1)
    assert results[0]["done"] is False and results[0]["items_read"] < 10
    assert saved is not None and saved.last_key is not None
    assert saved.items_read == results[0]["items_read"]
    while not results[-1]["done"]:
        assert len(results) < 10
        results.append(worker.lambda_handler(item, short, runtime=rt))

    assert len(results) >= 3  # ~4 items of 240 KB per 1 MB page
    assert sum(r["items_read"] for r in results) == 10  # continued, never redone
    assert sum(r["items_written"] for r in results) == 10
    assert_exact(scan_all(clients, "CoreTable"), expected_target(clients, migration, ["servers"]))

    # plenty of time: a finished segment is reported done at once
    assert worker.lambda_handler(item, FakeContext(900_000), runtime=rt)["done"] is True


def _function_with_disabled_mapping(clients: Clients, stream_arn: str) -> str:
    iam = clients.client("iam")
    role = iam.create_role(
        RoleName="replicator",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    lam = clients.lambda_
    lam.create_function(
        FunctionName="replicator",
        Runtime="python3.11",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    esm = lam.create_event_source_mapping(
        EventSourceArn=stream_arn,
        FunctionName="replicator",
        StartingPosition="TRIM_HORIZON",
        Enabled=False,
    )
    assert esm["State"] == "Disabled"
    return str(esm["UUID"])


def test_complete_marks_backfilled_only_when_every_segment_is_done_and_enables_the_mapping(
    lambda_env: Clients,
    rt: Runtime,
) -> None:
    clients = lambda_env
    seed(clients, big_servers(3), [])
    migration = coretable()
    prepare(clients, migration)
    store = ControlStore(clients.dynamodb, migration.control_table)
    desc = clients.dynamodb.describe_table(TableName="ServersTable")["Table"]
    uuid = _function_with_disabled_mapping(clients, desc["LatestStreamArn"])

    planned = worker.plan_handler(
        {"route": "servers", "total_segments": 2}, FakeContext(900_000), runtime=rt
    )
    first, second = planned["segments"]
    assert worker.lambda_handler(first, FakeContext(900_000), runtime=rt)["done"] is True
    with pytest.raises(BackfillIncompleteError, match="1 of 2 segment"):
        worker.complete_handler(
            {"route": "servers", "total_segments": 2}, FakeContext(900_000), runtime=rt
        )
    assert store.phase("servers").phase == Phase.BACKFILLING
    assert clients.lambda_.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"

    assert worker.lambda_handler(second, FakeContext(900_000), runtime=rt)["done"] is True
    result = worker.complete_handler(
        {"route": "servers", "total_segments": 2}, FakeContext(900_000), runtime=rt
    )

    assert result["route"] == "servers" and result["phase"] == Phase.BACKFILLED
    assert result["enabled_mappings"] == [uuid]
    assert clients.lambda_.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"
    phase = store.phase("servers")
    assert phase.phase == Phase.BACKFILLED and phase.needs_repair is False
    assert phase.backfill_completed_at >= phase.backfill_started_at
    assert_exact(scan_all(clients, "CoreTable"), expected_target(clients, migration, ["servers"]))


def test_bad_events_are_refused_clearly(lambda_env: Clients, rt: Runtime) -> None:
    seed(lambda_env, big_servers(1), [])
    prepare(lambda_env, coretable())
    with pytest.raises(ConfigError, match="no route named"):
        worker.plan_handler({"route": "nope"}, FakeContext(900_000), runtime=rt)
    with pytest.raises(ConfigError, match="segment 3 is not within"):
        worker.lambda_handler(
            {"route": "servers", "segment": 3, "total_segments": 2},
            FakeContext(900_000),
            runtime=rt,
        )
    with pytest.raises(ConfigError, match="total_segments"):
        worker.lambda_handler({"route": "servers", "segment": 0}, FakeContext(900_000), runtime=rt)


def test_a_page_throttled_past_the_margin_is_continued_not_failed(
    lambda_env: Clients, rt: Runtime
) -> None:
    """Retries stop at the margin; a throttled batch there used to raise, and the state
    machine (which retries only Lambda's own errors) failed the whole execution."""
    seed(lambda_env, [{"id": {"S": f"srv-{i:03d}"}} for i in range(60)], [])
    migration = coretable()
    prepare(lambda_env, migration)
    planned = worker.plan_handler(
        {"route": "servers", "total_segments": 1}, FakeContext(900_000), runtime=rt
    )
    context = FakeContext(900_000)
    ddb = rt.clients.dynamodb
    real = ddb.batch_write_item
    calls = [0]

    def throttled(**kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:  # the page took long: inside the margin now, and throttled
            context.remaining_ms = 20_000
            items = kw["RequestItems"]["CoreTable"]
            real(RequestItems={"CoreTable": items[:5]})
            return {"UnprocessedItems": {"CoreTable": items[5:]}}
        return real(**kw)

    ddb.batch_write_item = throttled  # type: ignore[method-assign]
    first = worker.lambda_handler(planned["segments"][0], context, runtime=rt)
    assert first["done"] is False
    again = worker.lambda_handler(planned["segments"][0], FakeContext(900_000), runtime=rt)
    assert again["done"] is True
    target = scan_all(lambda_env, "CoreTable")
    assert sum(1 for k in target if "SERVER#" in k) == 60


def test_the_plan_of_an_empty_input_is_every_route_and_must_fit_the_state(
    lambda_env: Clients, rt: Runtime
) -> None:
    data = seeding.generate(6, 12, seed=4)
    seed(lambda_env, data.servers, data.memberships)
    prepare(lambda_env, coretable())

    every = worker.plan_handler({"total_segments": 2}, FakeContext(900_000), runtime=rt)

    assert every["routes"] == [
        {"route": "servers", "total_segments": 2},
        {"route": "memberships", "total_segments": 2},
    ]
    assert [(s["route"], s["segment"]) for s in every["segments"]] == [
        ("servers", 0),
        ("servers", 1),
        ("memberships", 0),
        ("memberships", 1),
    ]
    with pytest.raises(ConfigError, match="do not fit one execution's state"):
        worker.plan_handler({"total_segments": 5000}, FakeContext(900_000), runtime=rt)
