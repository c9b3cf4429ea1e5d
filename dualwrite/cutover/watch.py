"""The watch after the switch (DESIGN.md section 10): the re-pointed functions' Errors and
Throttles (AWS/Lambda), and the watched alarms.

What counts as a breach, precisely:
- metrics: for each re-pointed function and each of Errors and Throttles, the Sum over
  [switch, switch + watch_seconds) is compared with the Sum over the same span just before
  the switch, [switch - watch_seconds, switch); MORE after than before is a breach (one more
  error is enough: the watch guards a switch, it is not a statistical test). Errors that
  happened before the switch therefore only raise the baseline, they never cause a breach.
  The counts after can only grow, so the watch stops at the first breach, before its time is
  up, with the same verdict it would reach at the end.
- alarms: a watched alarm in state ALARM at any check is a breach; so is a watched alarm
  that no longer exists (nothing then says it is out of ALARM). OK and INSUFFICIENT_DATA are
  fine.
Before anything changes (`alarm_problems`, `firing_alarms`): a watched alarm that does not
exist is bad configuration (exit 2); one already in ALARM refuses the cutover (exit 4).

CloudWatch keeps Lambda metrics per minute, so in AWS the minute of the switch may count on
both sides, and the newest minute may be published after the watch ended. Metrics also
arrive a minute or more late, so the baseline (the span before the switch) is read again at
each check, not once at the start: errors from before the switch that are published late
then raise the baseline as they raise the count after, and do not roll back a healthy
cutover. The waiting loop
takes an injected clock and sleeper, and reports its progress to a callback (the CLI draws a
progress bar with the time left).
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from dualwrite.aws.errors import aws_call
from dualwrite.errors import AwsError, ConfigError, ThrottledError
from dualwrite.jsondoc import JsonObject

NAMESPACE = "AWS/Lambda"
ERRORS = "Errors"
THROTTLES = "Throttles"
METRICS = (ERRORS, THROTTLES)
ALARM_STATE = "ALARM"
MISSING = "MISSING"  # our marker: the alarm was not found
DESCRIBE_MAX = 100  # alarm names per DescribeAlarms call
DATAPOINTS_MAX = 1440  # per GetMetricStatistics call

# --- pure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breach:
    kind: str  # "metric" or "alarm"
    subject: str  # function or alarm name
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail}


@dataclass(frozen=True)
class MetricCount:
    function: str
    metric: str
    before: float
    after: float

    def to_json(self) -> JsonObject:
        return {
            "function": self.function,
            "metric": self.metric,
            "before": self.before,
            "after": self.after,
        }


def metric_breaches(counts: Iterable[MetricCount]) -> list[Breach]:
    return [
        Breach(
            "metric",
            c.function,
            f"{c.metric} {c.after:g} after the switch, {c.before:g} in the same span before",
        )
        for c in counts
        if c.after > c.before
    ]


def alarm_breaches(states: Mapping[str, str]) -> list[Breach]:
    out = []
    for name, state in sorted(states.items()):
        if state == ALARM_STATE:
            out.append(Breach("alarm", name, "in ALARM"))
        elif state == MISSING:
            out.append(Breach("alarm", name, "no longer exists"))
    return out


def alarm_problems(names: Sequence[str], states: Mapping[str, str]) -> list[str]:
    """Watched alarms that do not exist: one line each, naming the key."""
    return [
        f"cutover.watch_alarms[{i}]: alarm {name} does not exist"
        for i, name in enumerate(names)
        if states.get(name, MISSING) == MISSING
    ]


def check_watch_alarms(names: Sequence[str], states: Mapping[str, str]) -> None:
    """Raise ConfigError (exit 2, one line) for the first watched alarm that does not exist."""
    problems = alarm_problems(names, states)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)


def firing_alarms(states: Mapping[str, str]) -> list[str]:
    """Gate reasons: each watched alarm already in ALARM (the cutover is refused)."""
    return [
        f"alarm {name}: already in ALARM (watched by cutover.watch_alarms)"
        for name, state in sorted(states.items())
        if state == ALARM_STATE
    ]


def period_for(span_s: float) -> int:
    """A GetMetricStatistics period (a multiple of 60 s) within its datapoint limit."""
    minutes = max(1, math.ceil(span_s / 60 / DATAPOINTS_MAX))
    return 60 * minutes


@dataclass(frozen=True)
class WatchPlan:
    functions: tuple[str, ...]
    alarms: tuple[str, ...]
    seconds: float
    switched_at: datetime  # timezone-aware
    poll_seconds: float = 30.0

    @property
    def ends_at(self) -> datetime:
        return self.switched_at + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class WatchProgress:
    elapsed: float  # seconds since the switch, at most the watch's length
    total: float
    checks: int

    @property
    def remaining(self) -> float:
        return max(0.0, self.total - self.elapsed)


@dataclass(frozen=True)
class WatchResult:
    breaches: tuple[Breach, ...]
    counts: tuple[MetricCount, ...]
    watched_seconds: float
    checks: int

    @property
    def ok(self) -> bool:
        return not self.breaches

    @property
    def reason(self) -> str:
        return "; ".join(str(b) for b in self.breaches)

    def to_json(self) -> JsonObject:
        return {
            "ok": self.ok,
            "breaches": [b.to_json() for b in self.breaches],
            "counts": [c.to_json() for c in self.counts],
            "watched_seconds": self.watched_seconds,
            "checks": self.checks,
        }


class WatchProbe(Protocol):
    def alarm_states(self, names: Sequence[str]) -> dict[str, str]: ...

    def alarmed_since(self, names: Sequence[str], since: datetime) -> set[str]:
        """The alarms that went to ALARM at or after `since` (their history), even if they
        are back to OK now: a poll only sees the state at that moment."""
        ...

    def metric_sum(self, function: str, metric: str, start: datetime, end: datetime) -> float: ...


def run_watch(
    probe: WatchProbe,
    plan: WatchPlan,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
    on_progress: Callable[[WatchProgress], None] = lambda _p: None,
) -> WatchResult:
    """Check every poll_seconds until the watch is over or something breaches."""
    start = plan.switched_at - timedelta(seconds=plan.seconds)
    checks = 0
    while True:
        t = min(now(), plan.ends_at)
        # the baseline is past data, yet read again at each check: Lambda metrics arrive a
        # minute or more late, and errors from before the switch must not count only after
        counts = tuple(
            MetricCount(
                fn,
                m,
                probe.metric_sum(fn, m, start, plan.switched_at),
                probe.metric_sum(fn, m, plan.switched_at, t) if t > plan.switched_at else 0.0,
            )
            for fn in plan.functions
            for m in METRICS
        )
        states = probe.alarm_states(plan.alarms) if plan.alarms else {}
        went = probe.alarmed_since(plan.alarms, plan.switched_at) if plan.alarms else set()
        between = [
            Breach("alarm", name, "went to ALARM since the switch (between two checks)")
            for name in sorted(went)
            if states.get(name) != ALARM_STATE
        ]
        breaches = tuple(metric_breaches(counts) + alarm_breaches(states) + between)
        checks += 1
        elapsed = max(0.0, (t - plan.switched_at).total_seconds())
        on_progress(WatchProgress(elapsed, plan.seconds, checks))
        if breaches or t >= plan.ends_at:
            return WatchResult(breaches, counts, elapsed, checks)
        sleep(min(plan.poll_seconds, (plan.ends_at - t).total_seconds()))


# --- adapter ------------------------------------------------------------------------------


def _to_alarm(item: Mapping[str, Any]) -> bool:
    """A history item of a state update into ALARM (HistoryData's newState, else the
    summary "Alarm updated from OK to ALARM")."""
    try:
        data = json.loads(str(item.get("HistoryData") or "{}"))
        state = (data.get("newState") or {}).get("stateValue")
    except (ValueError, AttributeError):
        state = None
    if state is not None:
        return bool(state == ALARM_STATE)
    return str(item.get("HistorySummary", "")).endswith(f"to {ALARM_STATE}")


#: CloudWatch clients found without DescribeAlarmHistory (the embedded emulator answers 500
#: after botocore's retries, ~12 s): asked once a client, not once a probe (a cutover's
#: checks before and after its switch share their client; the demo paid it twice)
_NO_HISTORY: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass
class CloudWatchProbe:
    """WatchProbe over one CloudWatch client (GetMetricStatistics, DescribeAlarms,
    DescribeAlarmHistory)."""

    client: Any

    @property
    def _no_history(self) -> bool:
        return self.client in _NO_HISTORY

    def alarm_states(self, names: Sequence[str]) -> dict[str, str]:
        """Each name's StateValue (metric and composite alarms); MISSING when not found."""
        states = dict.fromkeys(names, MISSING)
        unique = sorted(set(names))
        for i in range(0, len(unique), DESCRIBE_MAX):
            kwargs: dict[str, Any] = {
                "AlarmNames": unique[i : i + DESCRIBE_MAX],
                "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
            }
            while True:
                with aws_call("DescribeAlarms"):
                    response = self.client.describe_alarms(**kwargs)
                for key in ("MetricAlarms", "CompositeAlarms"):
                    for alarm in response.get(key, []):
                        states[str(alarm["AlarmName"])] = str(alarm["StateValue"])
                if not response.get("NextToken"):
                    break
                kwargs["NextToken"] = response["NextToken"]
        return states

    def alarmed_since(self, names: Sequence[str], since: datetime) -> set[str]:
        """DescribeAlarmHistory's state updates to ALARM since `since`. Where the history
        cannot be read (the embedded emulator does not implement it), the polled states
        alone count."""
        went: set[str] = set()
        if self._no_history:
            return went
        for name in sorted(set(names)):
            kwargs: dict[str, Any] = {
                "AlarmName": name,
                "HistoryItemType": "StateUpdate",
                "StartDate": since,
                # without it AWS answers with metric alarms' history only
                "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
            }
            while True:
                try:
                    with aws_call(f"DescribeAlarmHistory {name}"):
                        response = self.client.describe_alarm_history(**kwargs)
                except ThrottledError:
                    return went  # this poll's states count; the next poll asks again
                except (AwsError, NotImplementedError):
                    _NO_HISTORY.add(self.client)  # every poll would pay the retries
                    return went
                for item in response.get("AlarmHistoryItems", []):
                    if _to_alarm(item):
                        went.add(name)
                if not response.get("NextToken"):
                    break
                kwargs["NextToken"] = response["NextToken"]
        return went

    def metric_sum(self, function: str, metric: str, start: datetime, end: datetime) -> float:
        # CloudWatch takes whole seconds; a span shorter than one holds no datapoint
        start, end = start.replace(microsecond=0), end.replace(microsecond=0)
        if start >= end:
            return 0.0
        with aws_call(f"GetMetricStatistics {metric} {function}"):
            response = self.client.get_metric_statistics(
                Namespace=NAMESPACE,
                MetricName=metric,
                Dimensions=[{"Name": "FunctionName", "Value": function}],
                StartTime=start,
                EndTime=end,
                Period=period_for((end - start).total_seconds()),
                Statistics=["Sum"],
            )
        return float(sum(p.get("Sum", 0.0) for p in response.get("Datapoints", [])))
