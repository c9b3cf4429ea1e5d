"""Reference discovery on in-process moto: one of each kind, and what must not be listed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from dualwrite.aws.clients import Clients
from dualwrite.cutover.functions import TablePair
from dualwrite.cutover.references import (
    ALARM,
    DASHBOARD,
    PIPE,
    SSM_PARAMETER,
    STATE_MACHINE,
    TASK_DEFINITION,
    OldTables,
    Reference,
    ReferenceScanner,
    discover_references,
)

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
PAIRS = [TablePair("orders", "orders-v2", ARN + "orders", ARN + "orders-v2")]
OLD = OldTables.of(PAIRS)
ROLE = "arn:aws:iam::123456789012:role/r"


def alarm(clients: Clients, name: str, table: str) -> None:
    clients.cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="ThrottledRequests",
        Namespace="AWS/DynamoDB",
        Statistic="Sum",
        Dimensions=[{"Name": "TableName", "Value": table}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


def build_world(clients: Clients) -> None:
    alarm(clients, "orders-throttles", "orders")
    alarm(clients, "archive-throttles", "orders-archive")
    widget = {
        "type": "metric",
        "properties": {"metrics": [["AWS/DynamoDB", "X", "TableName", "orders"]]},
    }
    clients.cloudwatch.put_dashboard(
        DashboardName="ops", DashboardBody=json.dumps({"widgets": [widget]})
    )
    clients.cloudwatch.put_dashboard(DashboardName="quiet", DashboardBody='{"widgets": []}')
    ssm = clients.client("ssm")
    ssm.put_parameter(Name="/app/table", Value="orders", Type="String")
    ssm.put_parameter(Name="/app/logs", Value="orders-logs", Type="String")
    ssm.put_parameter(Name="/app/secret", Value="orders", Type="SecureString")
    for i in range(60):  # more than one DescribeParameters page and GetParameters batch
        ssm.put_parameter(Name=f"/filler/{i:02}", Value=f"v{i}", Type="String")
    ssm.put_parameter(Name="/filler/last", Value=ARN + "orders", Type="String")
    definition = {
        "StartAt": "Put",
        "States": {
            "Put": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": "orders", "Item": {}},
                "End": True,
            }
        },
    }
    sfn = clients.client("stepfunctions")
    sfn.create_state_machine(name="flow", definition=json.dumps(definition), roleArn=ROLE)
    sfn.create_state_machine(
        name="other", definition=json.dumps({"StartAt": "A", "States": {}}), roleArn=ROLE
    )
    ecs = clients.client("ecs")
    for value in ("orders-v2", "orders"):  # the latest revision is the one that counts
        ecs.register_task_definition(
            family="api",
            containerDefinitions=[
                {
                    "name": "web",
                    "image": "app:1",
                    "memory": 128,
                    "environment": [{"name": "TABLE", "value": value}],
                }
            ],
        )
    ecs.register_task_definition(
        family="old-only",
        containerDefinitions=[
            {"name": "w", "image": "x", "memory": 128, "environment": [{"name": "T", "value": "n"}]}
        ],
    )
    pipes = clients.client("pipes")
    pipes.create_pipe(
        Name="orders-feed",
        Source=ARN + "orders/stream/2024-01-01T00:00:00.000",
        Target="arn:aws:sqs:us-east-1:123456789012:q",
        RoleArn=ROLE,
    )
    pipes.create_pipe(
        Name="unrelated",
        Source="arn:aws:sqs:us-east-1:123456789012:in",
        Target="arn:aws:sqs:us-east-1:123456789012:out",
        RoleArn=ROLE,
    )


def test_every_kind_is_found_and_nothing_else(moto_clients: Clients) -> None:
    build_world(moto_clients)
    found = discover_references(moto_clients, PAIRS)
    assert found == ReferenceScanner(moto_clients).discover(OLD)
    assert found.skipped == ()
    assert list(found.references) == [
        Reference(ALARM, "orders-throttles", "dimension TableName = orders"),
        Reference(DASHBOARD, "ops", "widgets[0].properties.metrics[0][3] names orders"),
        Reference(SSM_PARAMETER, "/app/table", "value is orders (re-pointed at cutover)"),
        Reference(SSM_PARAMETER, "/filler/last", "value is orders (re-pointed at cutover)"),
        Reference(STATE_MACHINE, "flow", "States.Put.Parameters.TableName names orders"),
        Reference(
            TASK_DEFINITION, "api:2", "containerDefinitions[0].environment[0].value names orders"
        ),
        Reference(PIPE, "orders-feed", "Source names orders"),
    ]
    assert found.references[0].to_json() == {
        "kind": "cloudwatch_alarm",
        "name": "orders-throttles",
        "detail": "dimension TableName = orders",
    }


class DeniedSsm:
    """moto's SSM with DescribeParameters denied, as an operator without ssm:Describe* sees."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def describe_parameters(self, **kw: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
            "DescribeParameters",
        )


@dataclass
class Swapped:
    """Clients whose client for `service` is `wrap(the real one)` (a fault or a scope)."""

    clients: Clients
    service: str
    wrap: Callable[[Any], Any]

    def client(self, service: str) -> Any:
        real = self.clients.client(service)
        return self.wrap(real) if service == self.service else real


def test_a_kind_that_cannot_be_read_is_skipped_not_fatal(moto_clients: Clients) -> None:
    build_world(moto_clients)
    found = ReferenceScanner(Swapped(moto_clients, "ssm", DeniedSsm)).discover(OLD)
    assert [s.kind for s in found.skipped] == [SSM_PARAMETER]
    assert "AccessDeniedException" in found.skipped[0].reason
    assert found.skipped[0].to_json()["kind"] == SSM_PARAMETER
    assert {r.kind for r in found.references} == {
        ALARM,
        DASHBOARD,
        STATE_MACHINE,
        TASK_DEFINITION,
        PIPE,
    }
