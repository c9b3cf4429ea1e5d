"""Alarm clone names and requests, and the SSM re-pointing plan (pure)."""

from __future__ import annotations

from dualwrite.cutover.alarms import CLONE_TAG, NAME_MAX, AlarmClone, clone_name, clone_request
from dualwrite.cutover.functions import Renames, TablePair
from dualwrite.cutover.ssm import Parameter, ParameterChange, plan_parameters

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
PAIRS = {"orders": "orders-v2", "users": "people"}


def test_clone_names_rename_the_table_or_append_it() -> None:
    assert clone_name("orders-throttles", {"orders": "orders-v2"}) == "orders-v2-throttles"
    assert clone_name("read capacity", {"orders": "orders-v2"}) == "read capacity [orders-v2]"
    assert clone_name("users+orders", PAIRS) == "people+orders-v2"
    # deterministic, so running the cutover again finds the same clone
    assert clone_name("read capacity", PAIRS) == clone_name("read capacity", dict(PAIRS))
    long = clone_name("x" * 250, {"orders": "o" * 20})
    assert len(long) == NAME_MAX and long != clone_name("x" * 249 + "y", {"orders": "o" * 20})


def test_clone_request_repoints_dimension_table_name_and_keeps_the_rest() -> None:
    alarm = {
        "AlarmName": "orders-throttles",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-throttles",
        "AlarmDescription": "Throttled writes",
        "ActionsEnabled": True,
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:pager"],
        "MetricName": "WriteThrottleEvents",
        "Namespace": "AWS/DynamoDB",
        "Statistic": "Sum",
        "Dimensions": [
            {"Name": "TableName", "Value": "orders"},
            {"Name": "Operation", "Value": "PutItem"},
        ],
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "StateValue": "OK",
        "StateReason": "fine",
    }
    request = clone_request(alarm, PAIRS)
    assert request == {
        "AlarmName": "orders-v2-throttles",
        "AlarmDescription": "Throttled writes Clone of orders-throttles for orders-v2 "
        "(dualwrite cutover).",
        "Tags": [{"Key": CLONE_TAG, "Value": "orders-throttles"}],
        "ActionsEnabled": True,
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:pager"],
        "MetricName": "WriteThrottleEvents",
        "Namespace": "AWS/DynamoDB",
        "Statistic": "Sum",
        "Dimensions": [
            {"Name": "TableName", "Value": "orders-v2"},
            {"Name": "Operation", "Value": "PutItem"},
        ],
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    assert (
        clone_request({**alarm, "Dimensions": [{"Name": "TableName", "Value": "x"}]}, PAIRS) is None
    )


def test_clone_request_repoints_metric_math() -> None:
    alarm = {
        "AlarmName": "users-ratio",
        "Metrics": [
            {"Id": "e1", "Expression": "m1 / 60", "ReturnData": True},
            {
                "Id": "m1",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/DynamoDB",
                        "MetricName": "ConsumedWriteCapacityUnits",
                        "Dimensions": [{"Name": "TableName", "Value": "users"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
        ],
        "EvaluationPeriods": 1,
        "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    request = clone_request(alarm, PAIRS)
    assert request is not None
    assert request["AlarmName"] == "people-ratio"
    metric = request["Metrics"][1]["MetricStat"]["Metric"]
    assert metric["Dimensions"] == [{"Name": "TableName", "Value": "people"}]
    assert alarm["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == "users"
    assert request["Metrics"][0] == {"Id": "e1", "Expression": "m1 / 60", "ReturnData": True}


def test_clone_journal_round_trip() -> None:
    clone = AlarmClone("orders-throttles", "orders-v2-throttles", created=False)
    assert AlarmClone.from_json(clone.to_json()) == clone
    change = ParameterChange("/app/table", "orders", "orders-v2")
    assert ParameterChange.from_json(change.to_json()) == change


def test_only_string_parameters_exactly_an_old_name_or_arn_are_repointed() -> None:
    renames = Renames.of([TablePair("orders", "orders-v2", ARN + "orders", ARN + "orders-v2")])
    params = [
        Parameter("/b/arn", "String", ARN + "orders"),
        Parameter("/a/name", "String", "orders"),
        Parameter("/c/logs", "String", "orders-logs"),
        Parameter("/d/list", "StringList", "orders"),
        Parameter("/e/secret", "SecureString", "orders"),
        Parameter("/f/stream", "String", ARN + "orders/stream/x"),
        Parameter("/g/new", "String", "orders-v2"),
    ]
    assert plan_parameters(params, renames) == [
        ParameterChange("/a/name", "orders", "orders-v2"),
        ParameterChange("/b/arn", ARN + "orders", ARN + "orders-v2"),
    ]
