"""The alarms and the dashboard read dualwrite's metric names with exactly one dimension,
Route. (That the handlers emit exactly that is tested by calling them:
tests/functional/test_handler_metrics.py.)"""

from __future__ import annotations

import json

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
    # every metric of DESIGN.md section 6 (those of reverse replication too) is on the
    # dashboard or behind an alarm; the handlers' own output is checked against this in
    # tests/functional/test_handler_metrics.py
    assert {metric for _, metric, _ in used} == set(names.ALL)
