"""The watch on in-process moto CloudWatch (PutMetricData, SetAlarmState), with a fake clock
whose sleeps move time on and let things happen at given moments of the watch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dualwrite.aws.clients import Clients
from dualwrite.cutover.watch import (
    MISSING,
    CloudWatchProbe,
    WatchPlan,
    WatchProgress,
    WatchResult,
    check_watch_alarms,
    firing_alarms,
    run_watch,
)
from dualwrite.errors import ConfigError
from tests.cutover_world import SWITCH, FakeClock, metric, put_alarm, set_state


def alarm(clients: Clients, name: str, state: str = "OK") -> None:
    clients.cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Dimensions=[{"Name": "FunctionName", "Value": "api"}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    set_state(clients, name, state)


def watch(
    clients: Clients, clock: FakeClock, alarms: tuple[str, ...] = (), seconds: float = 120
) -> tuple[WatchResult, list[WatchProgress]]:
    progress: list[WatchProgress] = []
    plan = WatchPlan(("api", "worker"), alarms, seconds, SWITCH, poll_seconds=30)
    result = run_watch(
        CloudWatchProbe(clients.cloudwatch),
        plan,
        now=clock.now,
        sleep=clock.sleep,
        on_progress=progress.append,
    )
    return result, progress


def test_errors_from_before_the_switch_do_not_roll_back(moto_clients: Clients) -> None:
    metric(moto_clients, "api", "Errors", -90, 3)  # in the span before: the baseline
    metric(moto_clients, "api", "Errors", -500, 50)  # older than the span: not counted
    metric(moto_clients, "other", "Errors", 10, 9)  # not a re-pointed function
    metric(moto_clients, "api", "Errors", 20, 2)  # fewer than before: fine
    alarm(moto_clients, "api-errors")
    clock = FakeClock()
    result, progress = watch(moto_clients, clock, ("api-errors",))
    assert result.ok, result.reason
    assert result.checks == 5 and result.watched_seconds == 120
    assert [p.elapsed for p in progress] == [0, 30, 60, 90, 120]
    assert progress[-1].remaining == 0 and progress[0].remaining == 120
    assert clock.slept == [30, 30, 30, 30]
    counts = {(c.function, c.metric): (c.before, c.after) for c in result.counts}
    assert counts[("api", "Errors")] == (3, 2)
    assert counts[("worker", "Throttles")] == (0, 0)


def test_new_errors_after_the_switch_roll_back_at_once(moto_clients: Clients) -> None:
    metric(moto_clients, "api", "Errors", -30, 1)
    clock = FakeClock()
    clock.at(40, lambda: metric(moto_clients, "api", "Errors", 35, 2))
    result, progress = watch(moto_clients, clock, seconds=300)
    assert not result.ok
    assert result.reason == ("api: Errors 2 after the switch, 1 in the same span before")
    assert result.watched_seconds == 60  # the first check after the errors
    assert len(progress) == 3


def test_any_new_throttle_rolls_back(moto_clients: Clients) -> None:
    clock = FakeClock()
    clock.at(100, lambda: metric(moto_clients, "worker", "Throttles", 95))
    result, _ = watch(moto_clients, clock)
    assert [b.to_json() for b in result.breaches] == [
        {
            "kind": "metric",
            "subject": "worker",
            "detail": "Throttles 1 after the switch, 0 in the same span before",
        }
    ]


def test_an_alarm_firing_during_the_watch_rolls_back(moto_clients: Clients) -> None:
    alarm(moto_clients, "api-errors")
    alarm(moto_clients, "api-latency", "INSUFFICIENT_DATA")
    clock = FakeClock()
    clock.at(45, lambda: set_state(moto_clients, "api-errors", "ALARM"))
    result, _ = watch(moto_clients, clock, ("api-errors", "api-latency"))
    assert result.reason == "api-errors: in ALARM"
    assert result.watched_seconds == 60


def test_a_watched_alarm_deleted_during_the_watch_rolls_back(moto_clients: Clients) -> None:
    alarm(moto_clients, "api-errors")
    clock = FakeClock()
    clock.at(10, lambda: moto_clients.cloudwatch.delete_alarms(AlarmNames=["api-errors"]))
    result, _ = watch(moto_clients, clock, ("api-errors",))
    assert result.reason == "api-errors: no longer exists"


def test_prechecks_before_anything_changes(moto_clients: Clients) -> None:
    alarm(moto_clients, "calm")
    alarm(moto_clients, "firing", "ALARM")
    probe = CloudWatchProbe(moto_clients.cloudwatch)
    states = probe.alarm_states(["calm", "firing", "ghost"])
    assert states == {"calm": "OK", "firing": "ALARM", "ghost": MISSING}
    with pytest.raises(ConfigError, match=r"^cutover.watch_alarms\[2\]: alarm ghost does not"):
        check_watch_alarms(["calm", "firing", "ghost"], states)
    assert firing_alarms(probe.alarm_states(["calm", "firing"])) == [
        "alarm firing: already in ALARM (watched by cutover.watch_alarms)"
    ]


def test_alarm_states_cover_more_than_one_call(moto_clients: Clients) -> None:
    names = [f"a{i:03}" for i in range(105)]  # more than one DescribeAlarms call
    for name in names:
        alarm(moto_clients, name)
    set_state(moto_clients, "a104", "ALARM")
    # (moto has no composite alarms: the probe asks for both types and reads both lists)
    states = CloudWatchProbe(moto_clients.cloudwatch).alarm_states(names)
    assert len(states) == 105 and states["a104"] == "ALARM" and states["a000"] == "OK"


class _History:
    """A CloudWatch client whose DescribeAlarmHistory answers as AWS does (moto does not
    implement it), over the real client for everything else."""

    def __init__(self, real: Any, items: dict[str, list[dict[str, Any]]]) -> None:
        self.real, self.items, self.asked = real, items, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def describe_alarm_history(self, AlarmName: str, **_kw: Any) -> dict[str, Any]:
        self.asked += 1
        return {"AlarmHistoryItems": self.items.get(AlarmName, [])}


def test_an_alarm_that_fired_and_recovered_between_two_checks_is_a_breach(
    moto_clients: Clients,
) -> None:
    """A poll sees only the state of the moment: an alarm in ALARM from second 31 to 32 of
    a watch polled every 30 s passed unseen. Its history says it went to ALARM."""
    from datetime import UTC, datetime

    put_alarm(moto_clients, "blip", "old-t")
    moto_clients.cloudwatch.set_alarm_state(AlarmName="blip", StateValue="OK", StateReason="x")
    went = {
        "HistoryData": json.dumps({"newState": {"stateValue": "ALARM"}}),
        "HistorySummary": "Alarm updated from OK to ALARM",
    }
    back = {
        "HistoryData": json.dumps({"newState": {"stateValue": "OK"}}),
        "HistorySummary": "Alarm updated from ALARM to OK",
    }
    client = _History(moto_clients.cloudwatch, {"blip": [went, back]})
    probe = CloudWatchProbe(client)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert probe.alarm_states(["blip"]) == {"blip": "OK"}
    assert probe.alarmed_since(["blip", "calm"], since) == {"blip"}
    # where the history cannot be read (moto), the polled states alone count, asked once
    plain = CloudWatchProbe(moto_clients.cloudwatch)
    assert plain.alarmed_since(["blip"], since) == set()
    assert plain.alarmed_since(["blip"], since) == set() and plain._no_history
