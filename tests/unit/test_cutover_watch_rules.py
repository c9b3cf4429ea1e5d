"""The watch's rules (pure): what breaches, the alarm pre-checks, the metric period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from dualwrite.cutover.watch import (
    MISSING,
    Breach,
    MetricCount,
    WatchPlan,
    WatchProgress,
    alarm_breaches,
    alarm_problems,
    check_watch_alarms,
    firing_alarms,
    metric_breaches,
    period_for,
    run_watch,
)
from dualwrite.errors import ConfigError


def test_more_after_than_before_breaches_equal_or_fewer_does_not() -> None:
    counts = [
        MetricCount("api", "Errors", before=3, after=3),
        MetricCount("api", "Throttles", before=0, after=1),
        MetricCount("worker", "Errors", before=5, after=0),
        MetricCount("worker", "Throttles", before=2, after=2.5),
    ]
    assert metric_breaches(counts) == [
        Breach("metric", "api", "Throttles 1 after the switch, 0 in the same span before"),
        Breach("metric", "worker", "Throttles 2.5 after the switch, 2 in the same span before"),
    ]
    assert metric_breaches([MetricCount("api", "Errors", 0, 0)]) == []


def test_alarm_states() -> None:
    states = {"b": "ALARM", "a": "OK", "c": "INSUFFICIENT_DATA", "d": MISSING}
    assert [str(b) for b in alarm_breaches(states)] == ["b: in ALARM", "d: no longer exists"]
    assert firing_alarms(states) == ["alarm b: already in ALARM (watched by cutover.watch_alarms)"]


def test_a_watched_alarm_that_does_not_exist_is_bad_configuration() -> None:
    names = ["ok-alarm", "gone", "also-gone"]
    states = {"ok-alarm": "OK", "gone": MISSING}
    assert alarm_problems(names, states) == [
        "cutover.watch_alarms[1]: alarm gone does not exist",
        "cutover.watch_alarms[2]: alarm also-gone does not exist",
    ]
    with pytest.raises(ConfigError, match=r"^cutover.watch_alarms\[1\]: alarm gone does not"):
        check_watch_alarms(names, states)
    check_watch_alarms(["ok-alarm"], states)


@pytest.mark.parametrize(
    ("span", "period"), [(0, 60), (30, 60), (600, 60), (86400, 60), (86401, 120), (7 * 86400, 420)]
)
def test_period_is_whole_minutes_within_the_datapoint_limit(span: float, period: int) -> None:
    assert period_for(span) == period
    assert span / period <= 1440


def test_plan_and_progress() -> None:
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    plan = WatchPlan(("api",), (), 90, at)
    assert plan.ends_at == datetime(2026, 1, 1, 12, 1, 30, tzinfo=UTC)
    assert WatchProgress(30, 90, 2).remaining == 60
    assert WatchProgress(95, 90, 4).remaining == 0


@dataclass
class LateMetrics:
    """CloudWatch as in AWS: errors of the switch minute from before the switch are
    published only after the first check, in the span before (the baseline) and, since a
    minute's datapoint straddles the switch, in the span after too."""

    switched_at: datetime
    published: bool = False
    calls: list[tuple[datetime, datetime]] = field(default_factory=list)

    def alarm_states(self, names: Sequence[str]) -> dict[str, str]:
        return {}

    def alarmed_since(self, names: Sequence[str], since: datetime) -> set[str]:
        return set()

    def metric_sum(self, function: str, metric: str, start: datetime, end: datetime) -> float:
        self.calls.append((start, end))
        return 3.0 if self.published and metric == "Errors" else 0.0


def test_the_baseline_is_read_again_at_each_check_so_late_metrics_count_on_both_sides() -> None:
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    probe = LateMetrics(at)
    clock = [at + timedelta(seconds=30)]

    def sleep(seconds: float) -> None:
        probe.published = True  # the late datapoint arrives while the watch waits
        clock[0] += timedelta(seconds=seconds)

    result = run_watch(
        probe, WatchPlan(("api",), (), 90, at, 30), now=lambda: clock[0], sleep=sleep
    )

    assert result.ok, result.reason
    assert result.checks == 3
    errors = [c for c in result.counts if c.metric == "Errors"]
    assert [(c.before, c.after) for c in errors] == [(3.0, 3.0)]
    baseline_reads = [c for c in probe.calls if c[1] == at]
    assert len(baseline_reads) == 2 * result.checks  # Errors and Throttles at each check


@dataclass
class Blip:
    """An alarm OK at every poll, whose history says it went to ALARM in between."""

    def alarm_states(self, names: Sequence[str]) -> dict[str, str]:
        return dict.fromkeys(names, "OK")

    def alarmed_since(self, names: Sequence[str], since: datetime) -> set[str]:
        return {"latency"} & set(names)

    def metric_sum(self, function: str, metric: str, start: datetime, end: datetime) -> float:
        return 0.0


def test_an_alarm_that_went_to_alarm_between_two_checks_stops_the_watch() -> None:
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    clock = [at + timedelta(seconds=31)]
    result = run_watch(
        Blip(), WatchPlan((), ("latency", "calm"), 90, at, 30), now=lambda: clock[0], sleep=print
    )
    assert not result.ok
    assert [(b.subject, b.detail) for b in result.breaches] == [
        ("latency", "went to ALARM since the switch (between two checks)")
    ]
