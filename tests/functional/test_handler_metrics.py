"""The three Lambda handlers, called for real (in-process moto), emit the metrics the alarms
and the dashboard of infra/template.yaml read: the same names and namespace, and exactly one
dimension, Route. A CloudWatch metric is identified by all of its dimensions, so any other
(Powertools adds `service` when POWERTOOLS_SERVICE_NAME is set) would leave every alarm
without data and the dashboard empty."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from backfill import worker
from dualwrite import metrics as names
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration
from dualwrite.control import ControlStore, Phase
from dualwrite.runtime import Runtime
from reconciler import handler as reconciler
from stream_replicator import handler as replicator
from tests.functional.test_reconcile_support import build_core
from tests.functional.test_replicator_handler import Events, emf_lines
from tests.unit.test_infra_metrics import template_metrics

#: what each handler emits per route
REPLICATOR = {
    names.REPLICATED_RECORDS,
    names.REPLICATION_FAILURES,
    names.QUARANTINED,
    names.UNKNOWN_ROLE,
    names.TTL_DELETES,
    names.REPLICATION_LAG_MS,
}
BACKFILL = {names.BACKFILL_ITEMS}
RECONCILER = {
    names.PARITY_MISSING,
    names.PARITY_EXTRA,
    names.PARITY_MISMATCHED,
    names.PARITY_PERCENT,
}
#: what the replicator emits for a target-stream record after cutover (issue 14 wiring)
REVERSE = {names.REVERSE_REPLICATED_RECORDS, names.FOREIGN_WRITES, names.UNREPRESENTABLE}


@dataclass
class Context:
    function_name: str = "dualwrite"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:dualwrite"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


@dataclass
class Core:
    migration: Migration
    clients: Clients
    store: ControlStore
    servers: int

    def runtime(self) -> Runtime:
        return Runtime.of(self.migration, self.clients, self.store)


@pytest.fixture
def core(moto_clients: Clients, monkeypatch: pytest.MonkeyPatch) -> Iterator[Core]:
    # what the template gives the functions, plus the service name it must not turn into a
    # dimension
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "dualwrite")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    migration, store, data = build_core(moto_clients, servers=4, memberships=6)
    yield Core(migration, moto_clients, store, len(data.servers))


def emitted(out: str) -> dict[str, dict[str, float]]:
    """route -> metric -> value, checking each blob's namespace and dimensions on the way."""
    got: dict[str, dict[str, float]] = {}
    for blob in emf_lines(out):
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "DualWrite"
        assert directive["Dimensions"] == [["Route"]]
        assert "service" not in blob
        values = got.setdefault(blob["Route"], {})
        for metric in directive["Metrics"]:
            name = metric["Name"]
            assert metric.get("Unit") == names.unit_of(name)
            raw: Any = blob[name]
            values[name] = float(raw[0] if isinstance(raw, list) else raw)
    return got


def assert_template_reads(route_values: dict[str, dict[str, float]], emits: set[str]) -> None:
    """Every metric the template reads that this handler emits is emitted as it reads it."""
    read = template_metrics()
    for route, values in route_values.items():
        for name in values:
            assert ("DualWrite", name, ("Route",)) in read or name not in emits, (route, name)
    ours = {name for ns, name, _dims in read if name in emits}
    assert ours, "the template reads none of this handler's metrics"
    assert ours <= {name for values in route_values.values() for name in values}


def test_every_metric_the_template_reads_has_a_handler() -> None:
    read = {name for _ns, name, _dims in template_metrics()}
    assert read <= REPLICATOR | REVERSE | BACKFILL | RECONCILER


def test_the_replicator_emits_final_counts_with_route_only(
    core: Core, capsys: pytest.CaptureFixture[str]
) -> None:
    core.store.set_phase("servers", Phase.BACKFILLED)
    events = Events(core.clients)
    events.put("ServersTable", {"id": {"S": "srv-new-1"}, "name": {"S": "one"}})
    events.put("ServersTable", {"id": {"S": "srv-new-2"}, "name": {"S": "two"}})
    events.delete("ServersTable", {"id": {"S": "srv-new-2"}, "name": {"S": "two"}}, ttl=True)
    for record in events.records:
        record["eventSourceARN"] = record["eventSourceARN"].replace("NumServers", "ServersTable")
    capsys.readouterr()

    response = replicator.lambda_handler(events.event(), Context(), runtime=core.runtime())

    assert response == {"batchItemFailures": []}
    got = emitted(capsys.readouterr().out)
    assert set(got) == {"servers"}
    values = got["servers"]
    assert set(values) == REPLICATOR
    assert {k: v for k, v in values.items() if k != names.REPLICATION_LAG_MS} == {
        names.REPLICATED_RECORDS: 3.0,
        names.REPLICATION_FAILURES: 0.0,
        names.QUARANTINED: 0.0,
        names.UNKNOWN_ROLE: 0.0,
        names.TTL_DELETES: 1.0,
    }
    assert values[names.REPLICATION_LAG_MS] > 0
    assert_template_reads(got, REPLICATOR)


def test_the_backfill_worker_emits_backfill_items_with_route_only(
    core: Core, capsys: pytest.CaptureFixture[str]
) -> None:
    rt = core.runtime()
    plan = worker.plan_handler({"route": "servers", "total_segments": 1}, Context(), runtime=rt)
    capsys.readouterr()

    done = worker.lambda_handler(plan["segments"][0], Context(), runtime=rt)

    assert done["done"] is True and done["items_written"] == core.servers
    got = emitted(capsys.readouterr().out)
    assert got == {"servers": {names.BACKFILL_ITEMS: float(core.servers)}}
    assert_template_reads(got, BACKFILL)


def test_the_reconciler_emits_parity_with_route_only(
    core: Core, capsys: pytest.CaptureFixture[str]
) -> None:
    for route in core.migration.routes:
        core.store.set_phase(route.name, Phase.BACKFILLED)
    capsys.readouterr()

    summary = reconciler.lambda_handler({"settle_s": 0}, Context(), runtime=core.runtime())

    assert summary["complete"] is True and summary["parity"] is True
    assert json.loads(json.dumps(summary)) == summary
    got = emitted(capsys.readouterr().out)
    parity = {
        names.PARITY_MISSING: 0.0,
        names.PARITY_EXTRA: 0.0,
        names.PARITY_MISMATCHED: 0.0,
        names.PARITY_PERCENT: 100.0,
    }
    assert got == {"servers": parity, "memberships": parity}
    assert_template_reads(got, RECONCILER)
