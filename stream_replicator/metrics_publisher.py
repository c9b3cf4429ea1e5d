"""The local runner's metrics: PutMetricData per route (dualwrite.metrics.publish, never EMF
on a terminal), each publication carrying what happened since the previous one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dualwrite import metrics
from stream_replicator.results import RouteCounts, metric_values


@dataclass
class MetricsPublisher:
    cloudwatch: Callable[[], Any]
    namespace: str
    notify: Callable[[str], None] = field(default=lambda _message: None)
    _published: dict[str, RouteCounts] = field(default_factory=dict)

    def publish(self, counts: Mapping[str, RouteCounts]) -> None:
        """One PutMetricData per route with something new; a route that has settled nothing
        yet is published every time (its alarms see zeros rather than no data)."""
        for route, now in sorted(counts.items()):
            before = self._published.get(route, RouteCounts())
            delta = now.minus(before)
            if not delta.records and not delta.failed and not delta.held and before.records:
                continue
            try:
                metrics.publish(self.cloudwatch(), self.namespace, route, metric_values(delta))
            except Exception as exc:  # metrics must never stop replication
                self.notify(f"could not publish metrics for route {route}: {exc}")
                return
            self._published[route] = replace(now)
