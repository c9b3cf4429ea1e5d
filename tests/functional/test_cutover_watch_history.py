"""The post-cutover watch's alarm history (dualwrite/cutover/watch.py): a composite alarm's
history is asked for too (AWS answers with metric alarms only by default), and one throttled
history call no longer switches the history off for the rest of the watch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from dualwrite.aws.clients import Clients
from dualwrite.cutover.watch import CloudWatchProbe, WatchPlan, run_watch
from tests.cutover_world import SWITCH, FakeClock, put_alarm
from tests.functional.test_cutover_watch_aws import _History

WENT = {
    "HistoryItemType": "StateUpdate",
    "HistoryData": json.dumps({"newState": {"stateValue": "ALARM"}}),
    "HistorySummary": "Alarm updated from OK to ALARM",
}
BACK = {
    "HistoryItemType": "StateUpdate",
    "HistoryData": json.dumps({"newState": {"stateValue": "OK"}}),
    "HistorySummary": "Alarm updated from ALARM to OK",
}


class AwsLikeHistory:
    """DescribeAlarmHistory as AWS documents it: "AlarmTypes ... If you omit this parameter,
    only metric alarms are returned." `composite` alarms' history is returned only when the
    request asks for CompositeAlarm."""

    def __init__(self, real: Any, items: dict[str, list[dict[str, Any]]], composite: set[str]):
        self.real, self.items, self.composite = real, items, composite

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def describe_alarm_history(self, AlarmName: str, **kw: Any) -> dict[str, Any]:
        types = kw.get("AlarmTypes") or ["MetricAlarm"]
        kind = "CompositeAlarm" if AlarmName in self.composite else "MetricAlarm"
        if kind not in types:
            return {"AlarmHistoryItems": []}
        return {"AlarmHistoryItems": self.items.get(AlarmName, [])}


def test_a_composite_alarm_that_fired_between_two_checks_is_seen(moto_clients: Clients) -> None:
    """watch_alarms commonly lists a composite "service health" alarm (alarm_states asks for
    CompositeAlarm explicitly, so it is accepted). Its history is asked for without
    AlarmTypes, so AWS returns nothing for it: a composite that went to ALARM and back
    between two polls passes the watch unnoticed, contrary to README's IAM table promise."""
    client = AwsLikeHistory(moto_clients.cloudwatch, {"app-health": [WENT, BACK]}, {"app-health"})
    probe = CloudWatchProbe(client)
    assert probe.alarmed_since(["app-health"], datetime(2026, 1, 1, tzinfo=UTC)) == {"app-health"}


class ThrottledOnce(_History):
    """DescribeAlarmHistory throttled once (after botocore's own retries), then as AWS."""

    def describe_alarm_history(self, AlarmName: str, **kw: Any) -> dict[str, Any]:
        if not self.asked:
            self.asked += 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "DescribeAlarmHistory",
            )
        return super().describe_alarm_history(AlarmName, **kw)


def test_one_throttled_history_call_does_not_switch_the_history_off_for_the_whole_watch(
    moto_clients: Clients,
) -> None:
    """A single ThrottlingException sets `_no_history` for good: every later poll only sees
    the momentary state, so an alarm that fires and recovers between polls later in the
    watch passes. The watch reports ok and the cutover is kept."""
    cw = moto_clients.cloudwatch
    put_alarm(moto_clients, "blip", "old-t")
    cw.set_alarm_state(AlarmName="blip", StateValue="OK", StateReason="x")
    history: dict[str, list[dict[str, Any]]] = {}
    client = ThrottledOnce(cw, history)
    clock = FakeClock()
    # between the 2nd and 3rd check the alarm fires and recovers: only its history says so
    clock.at(45, lambda: history.setdefault("blip", [WENT, BACK]))
    plan = WatchPlan((), ("blip",), 120, SWITCH, poll_seconds=30)
    result = run_watch(CloudWatchProbe(client), plan, now=clock.now, sleep=clock.sleep)
    assert not result.ok, (result.checks, client.asked)


class _NoHistory:
    """A CloudWatch client without DescribeAlarmHistory (the embedded emulator's 500)."""

    def __init__(self) -> None:
        self.asked = 0

    def describe_alarm_history(self, **_kw: Any) -> Any:
        self.asked += 1
        raise ClientError({"Error": {"Code": "500", "Message": "not implemented"}}, "X")


def test_a_client_without_alarm_history_is_asked_once_whatever_the_probes() -> None:
    """A cutover's watch before and after its switch are two probes on one client: each
    paid botocore's retries of the 500 (about 12 s on the embedded emulator, twice in the
    demo). Another client is asked for itself."""
    since = datetime(2026, 1, 1, tzinfo=UTC)
    one, other = _NoHistory(), _NoHistory()
    for probe in (CloudWatchProbe(one), CloudWatchProbe(one), CloudWatchProbe(other)):
        assert probe.alarmed_since(["a"], since) == set()
    assert (one.asked, other.asked) == (1, 1)
