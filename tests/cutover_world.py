"""What the issue-15 cutover tests build on moto: functions that answer with their event
(Docker-less Lambda), parameters, alarms and metrics, and a fake clock for the watch."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dualwrite.aws.clients import Clients


def make_function(clients: Clients, name: str) -> None:
    iam = clients.client("iam")
    try:
        role = iam.get_role(RoleName="fn-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(
            RoleName="fn-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("h.py", "def h(event, context):\n    return event\n")
    clients.lambda_.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="h.h",
        Code={"ZipFile": buf.getvalue()},
    )


def value(clients: Clients, name: str) -> str:
    return str(clients.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])


def put_alarm(clients: Clients, name: str, table: str, threshold: float = 5) -> None:
    clients.cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="WriteThrottleEvents",
        Namespace="AWS/DynamoDB",
        Statistic="Sum",
        Dimensions=[{"Name": "TableName", "Value": table}],
        Period=60,
        EvaluationPeriods=2,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:pager"],
    )


def alarms_by_name(clients: Clients) -> dict[str, dict[str, Any]]:
    return {a["AlarmName"]: a for a in clients.cloudwatch.describe_alarms()["MetricAlarms"]}


SWITCH = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@dataclass
class FakeClock:
    """now() and sleep(); `at(seconds after the switch, action)` runs an action once the
    clock has passed that moment."""

    t: datetime = SWITCH
    pending: list[tuple[datetime, Callable[[], None]]] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)
        due = [p for p in self.pending if p[0] <= self.t]
        self.pending = [p for p in self.pending if p[0] > self.t]
        for _, action in due:
            action()

    def at(self, seconds: float, action: Callable[[], None]) -> None:
        self.pending.append((SWITCH + timedelta(seconds=seconds), action))


def metric(clients: Clients, function: str, name: str, seconds: float, value: float = 1) -> None:
    """`value` of AWS/Lambda `name` for `function`, `seconds` after the switch (< 0: before)."""
    clients.cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "FunctionName", "Value": function}],
                "Timestamp": SWITCH + timedelta(seconds=seconds),
                "Value": value,
                "Unit": "Count",
            }
        ],
    )


def set_state(clients: Clients, name: str, state: str) -> None:
    clients.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
