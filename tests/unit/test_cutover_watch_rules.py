"""The watch's rules (pure): what breaches, the alarm pre-checks, the metric period."""

from __future__ import annotations

from datetime import UTC, datetime

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
