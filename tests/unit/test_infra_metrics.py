"""The alarms and the dashboard find the metrics the Lambdas emit: same names, same namespace,
and exactly the one dimension the template uses (Route). A CloudWatch metric is identified by
all of its dimensions, so an extra one (Powertools adds `service` when a service name is
given to Metrics or set in POWERTOOLS_SERVICE_NAME) would leave every alarm on INSUFFICIENT
data and the dashboard empty."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from dualwrite import metrics as names
from tests.unit.test_infra_template import REQUIRED, Resolver, load_template, sam_transform

#: entry point module -> a metric its handler emits per route
EMITTERS = {
    "stream_replicator.handler": names.REPLICATED_RECORDS,
    "backfill.worker": names.BACKFILL_ITEMS,
    "reconciler.handler": names.PARITY_PERCENT,
}


def template_metrics() -> set[tuple[str, str, tuple[str, ...]]]:
    """(namespace, metric, dimension names) of every dualwrite metric an alarm or the
    dashboard reads."""
    transformed = sam_transform(load_template(), REQUIRED)
    resolver = Resolver(transformed, REQUIRED)
    resources = {n: resolver.resolve(r) for n, r in transformed["Resources"].items()}
    out: set[tuple[str, str, tuple[str, ...]]] = set()
    for res in resources.values():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::CloudWatch::Alarm":
            stats = (
                [props]
                if "MetricName" in props
                else [q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q]
            )
            for m in stats:
                dims = tuple(d["Name"] for d in m.get("Dimensions", []))
                out.add((m["Namespace"], m["MetricName"], dims))
        if res["Type"] == "AWS::CloudWatch::Dashboard":
            for widget in json.loads(props["DashboardBody"])["widgets"]:
                for row in widget["properties"].get("metrics", []):
                    parts = [x for x in row if isinstance(x, str)]
                    out.add((parts[0], parts[1], tuple(parts[2::2])))
    return {m for m in out if m[0] == "DualWrite"}


def test_alarms_and_dashboard_use_dualwrite_metric_names_with_route_only() -> None:
    used = template_metrics()
    assert {metric for _, metric, _ in used} <= set(names.ALL)
    assert {dims for _, _, dims in used} == {("Route",)}
    # every metric of DESIGN.md section 6 is on the dashboard or behind an alarm
    assert {metric for _, metric, _ in used} == set(names.ALL)


@pytest.mark.parametrize("module_name", sorted(EMITTERS))
def test_entry_points_emit_metrics_with_the_route_dimension_only(
    module_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the environment the template gives the functions: no POWERTOOLS_SERVICE_NAME
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "DualWrite")
    module = importlib.import_module(module_name)
    metrics: Any = module.metrics
    capsys.readouterr()
    # as the handler does: namespace from the migration file, the route, a value, a flush
    metrics.namespace = "DualWrite"
    metrics.add_dimension(name="Route", value="servers")
    metrics.add_metric(name=EMITTERS[module_name], unit="Count", value=1)
    metrics.flush_metrics()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert blobs, "no EMF written"
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "DualWrite"
            assert directive["Dimensions"] == [["Route"]], (
                f"{module_name}.metrics adds dimensions {directive['Dimensions']}: the "
                "template's alarms and dashboard use Route only (drop service= from Metrics)"
            )
        assert blob["Route"] == "servers"
