"""Which texts, documents, alarms and parameters name an old table (pure)."""

from __future__ import annotations

import io
import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from dualwrite.cutover.functions import TablePair
from dualwrite.cutover.references import (
    ALARM,
    DASHBOARD,
    SSM_PARAMETER,
    OldTables,
    Reference,
    alarm_references,
    document_references,
    json_hits,
    parameter_references,
    references_table,
    sorted_references,
)

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
OLD = OldTables.of(
    [
        TablePair("orders", "orders-v2", ARN + "orders", ARN + "orders-v2"),
        TablePair("orders.archive", "archive-v2", ARN + "orders.archive", ARN + "archive-v2"),
    ]
)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("orders", ("orders",)),
        ('["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", "orders"]', ("orders",)),
        (ARN + "orders", ("orders",)),
        (ARN + "orders/stream/2024-01-01T00:00:00.000", ("orders",)),
        ("Errors on orders.", ("orders",)),
        ("orders-archive", ()),
        ("my-orders", ()),
        ("orders_2", ()),
        ("xorders", ()),
        ("orders.archive", ("orders.archive",)),
        ("orders and orders.archive", ("orders", "orders.archive")),
        ("ORDERS", ()),
        ("", ()),
    ],
)
def test_names_are_whole_tokens(text: str, found: tuple[str, ...]) -> None:
    assert OLD.names_in(text) == found


def test_exact_value_is_a_name_or_an_arn() -> None:
    assert OLD.table_of("orders") == "orders"
    assert OLD.table_of(ARN + "orders.archive") == "orders.archive"
    assert OLD.table_of("orders-v2") is None
    assert OLD.table_of(ARN + "orders/stream/x") is None


def test_json_hits_give_the_path() -> None:
    doc = {"a": [{"b": "orders"}, 3, None], "c": {"d": "nothing", "e": ARN + "orders"}}
    assert list(json_hits(doc, OLD)) == [("a[0].b", "orders"), ("c.e", "orders")]


def test_document_references_parse_json_text_and_fall_back_to_text() -> None:
    body = json.dumps({"widgets": [{"properties": {"title": "orders load"}}]})
    assert document_references(DASHBOARD, "d", body, OLD) == [
        Reference(DASHBOARD, "d", "widgets[0].properties.title names orders")
    ]
    assert document_references(DASHBOARD, "d", "not json: orders", OLD) == [
        Reference(DASHBOARD, "d", "names orders")
    ]


def test_alarm_references_read_dimension_table_name_including_metric_math() -> None:
    alarms = [
        {"AlarmName": "plain", "Dimensions": [{"Name": "TableName", "Value": "orders"}]},
        {
            "AlarmName": "math",
            "Metrics": [
                {"Id": "e", "Expression": "m1 + 1"},
                {
                    "Id": "m1",
                    "MetricStat": {
                        "Metric": {"Dimensions": [{"Name": "TableName", "Value": "orders.archive"}]}
                    },
                },
            ],
        },
        {"AlarmName": "other", "Dimensions": [{"Name": "TableName", "Value": "orders-v2"}]},
        {"AlarmName": "by-name-only", "Dimensions": [{"Name": "Queue", "Value": "orders"}]},
    ]
    assert alarm_references(alarms, OLD) == [
        Reference(ALARM, "plain", "dimension TableName = orders"),
        Reference(ALARM, "math", "dimension TableName = orders.archive"),
    ]


def test_parameter_references_tell_exact_string_values_from_mentions() -> None:
    params = [
        {"Name": "/app/table", "Type": "String", "Value": "orders"},
        {"Name": "/app/arn", "Type": "String", "Value": ARN + "orders"},
        {"Name": "/app/logs", "Type": "String", "Value": "orders-logs"},
        {"Name": "/app/list", "Type": "StringList", "Value": "orders,orders.archive"},
        {"Name": "/app/url", "Type": "String", "Value": "https://x/orders/y"},
    ]
    assert parameter_references(params, OLD) == [
        Reference(SSM_PARAMETER, "/app/table", "value is orders (re-pointed at cutover)"),
        Reference(SSM_PARAMETER, "/app/arn", "value is orders (re-pointed at cutover)"),
        Reference(SSM_PARAMETER, "/app/list", "value names orders"),
        Reference(SSM_PARAMETER, "/app/list", "value names orders.archive"),
        Reference(SSM_PARAMETER, "/app/url", "value names orders"),
    ]


def test_sorted_by_kind_then_name_without_duplicates() -> None:
    refs = [
        Reference(SSM_PARAMETER, "b", "x"),
        Reference(ALARM, "z", "x"),
        Reference(SSM_PARAMETER, "a", "x"),
        Reference(ALARM, "z", "x"),
    ]
    assert [(r.kind, r.name) for r in sorted_references(refs)] == [
        (ALARM, "z"),
        (SSM_PARAMETER, "a"),
        (SSM_PARAMETER, "b"),
    ]
    assert refs[0].to_json() == {"kind": SSM_PARAMETER, "name": "b", "detail": "x"}


def render(table: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(table)
    return out.getvalue()


def test_rich_table_lists_each_reference() -> None:
    text = render(references_table([Reference(ALARM, "orders-throttles", "dimension X")]))
    assert "orders-throttles" in text and "cloudwatch_alarm" in text and "dimension X" in text
    assert "none found" in render(references_table([]))


table_names = st.text(
    alphabet=string.ascii_letters + string.digits + "_.-", min_size=3, max_size=20
)
separators = st.sampled_from([" ", '"', "/", ":", ",", "\n", "[", "'", "=", ""])
name_chars = st.sampled_from(list(string.ascii_letters + string.digits + "_-"))


@given(table_names, separators, separators)
def test_a_name_between_separators_is_always_found(name: str, left: str, right: str) -> None:
    # an empty separator puts the name at the start or the end of the text
    text = f"{'x' if left else ''}{left}{name}{right}{'y' if right else ''}"
    assert OldTables(frozenset({name})).names_in(text) == (name,)


@given(table_names, name_chars, st.booleans())
def test_a_name_glued_to_another_name_character_is_not_found(
    name: str, glue: str, before: bool
) -> None:
    old = OldTables(frozenset({name}))
    text = f"{glue}{name}" if before else f"{name}{glue}"
    assert old.names_in(text) == ()
