"""Smoke tests' verdicts: the subset match (properties), judging an answer, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.config import SmokeTest
from dualwrite.cutover.smoke import (
    check_smoke_tests,
    contains,
    first_mismatch,
    judge,
    smoke_test_problems,
    split_function,
)
from dualwrite.errors import ConfigError

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)


@given(json_values)
def test_everything_contains_itself(value: Any) -> None:
    assert contains(value, value)


@given(objects, st.data())
def test_an_object_contains_any_part_of_itself(actual: dict[str, Any], data: Any) -> None:
    keys = data.draw(
        st.lists(st.sampled_from(sorted(actual)), unique=True) if actual else st.just([])
    )
    assert contains({k: actual[k] for k in keys}, actual)


@given(objects, st.text(max_size=6), json_values)
def test_a_key_the_answer_lacks_is_a_mismatch_naming_it(
    actual: dict[str, Any], key: str, value: Any
) -> None:
    if key in actual:
        return
    assert first_mismatch({key: value}, actual) == f"{key}: missing"


@given(objects, json_values)
def test_a_changed_leaf_is_a_mismatch(actual: dict[str, Any], other: Any) -> None:
    for key, value in actual.items():
        if not contains(other, value):
            assert not contains({key: other}, actual)


@given(json_values)
def test_survives_a_json_round_trip(value: Any) -> None:
    assert contains(value, json.loads(json.dumps(value)))


@pytest.mark.parametrize(
    ("expected", "actual", "mismatch"),
    [
        ({"statusCode": 200}, {"statusCode": 200, "body": "x"}, None),
        ({"statusCode": 200}, {"statusCode": 200.0}, None),
        ({"ok": True}, {"ok": 1}, "ok: expected true, got 1"),
        ({"n": 1}, {"n": True}, "n: expected 1, got true"),
        ({"n": "1"}, {"n": 1}, 'n: expected "1", got 1'),
        ({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}]}}, None),
        ({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 3}]}}, "a.b[1].c: expected 2, got 3"),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, "a: expected 2 elements, got 3"),
        ({"a": [2, 1]}, {"a": [1, 2]}, "a[0]: expected 2, got 1"),
        ({"a": {}}, {"a": []}, "a: expected an object, got []"),
        ({"statusCode": 200}, "OK", 'the response: expected an object, got "OK"'),
        ({}, {"anything": 1}, None),
    ],
)
def test_subset_match_cases(expected: Any, actual: Any, mismatch: str | None) -> None:
    assert first_mismatch(expected, actual) == mismatch


def test_long_actual_values_are_cut() -> None:
    reason = first_mismatch({"a": 1}, {"a": "x" * 500})
    assert reason == 'a: expected 1, got "' + "x" * 56 + "..."


HEALTH = SmokeTest(function="api", event={"path": "/health"}, expect={"statusCode": 200})


def test_judge() -> None:
    ok = judge(HEALTH, 200, None, b'{"statusCode": 200, "body": "{}"}', 12)
    assert ok.passed and ok.reason == "" and ok.to_json()["duration_ms"] == 12
    failed = judge(HEALTH, 200, "Unhandled", b'{"errorMessage": "boom"}')
    assert not failed.passed and failed.reason == "function error (Unhandled)"
    assert failed.function_error == "Unhandled"
    not_met = judge(HEALTH, 200, None, b'{"statusCode": 500}')
    assert not not_met.passed
    assert not_met.reason == "expect not met: statusCode: expected 200, got 500"
    assert judge(HEALTH, 200, None, b"Simple Lambda happy path OK").reason == (
        "the response is not JSON"
    )
    no_expect = SmokeTest(function="api", event={})
    assert judge(no_expect, 200, None, b"not json at all").passed
    assert not judge(no_expect, 200, "Handled", b"null").passed


def test_smoke_tests_must_name_existing_repointed_functions() -> None:
    tests = [
        SmokeTest(function="api", event={}),
        SmokeTest(function="ghost", event={}),
        SmokeTest(function="batch", event={}),
    ]
    exists = {"api", "batch"}.__contains__
    assert smoke_test_problems(tests, {"api", "worker"}, exists) == [
        "cutover.smoke_tests[1].function: function ghost does not exist",
        "cutover.smoke_tests[2].function: function batch is not re-pointed by this cutover "
        "(re-pointed: api, worker)",
    ]
    with pytest.raises(ConfigError) as info:
        check_smoke_tests(tests, {"api", "worker"}, exists)
    assert str(info.value) == (
        "cutover.smoke_tests[1].function: function ghost does not exist (and 1 more problem(s))"
    )
    assert info.value.exit_code == 2
    check_smoke_tests(tests[:1], {"api"}, exists)


ARN = "arn:aws:lambda:us-east-1:123456789012:function:api"


@pytest.mark.parametrize(
    ("function", "parts"),
    [
        ("api", ("api", None)),
        ("api:live", ("api", "live")),
        ("123456789012:function:api", ("api", None)),
        ("123456789012:function:api:3", ("api", "3")),
        (ARN, ("api", None)),
        (ARN + ":$LATEST", ("api", "$LATEST")),
        (ARN + ":live", ("api", "live")),
    ],
)
def test_a_function_is_split_into_name_and_qualifier(
    function: str, parts: tuple[str, str | None]
) -> None:
    assert split_function(function) == parts


def test_a_smoke_test_of_code_the_cutover_does_not_change_is_refused() -> None:
    """The cutover re-points $LATEST; a published version is immutable and keeps the old
    table, and so does an alias on one: such a test passed without exercising the switch."""
    on_latest = {("api", "latest-alias")}
    tests = [
        SmokeTest(function=f"{ARN}:3", event={}),
        SmokeTest(function="api:live", event={}),
        SmokeTest(function="api:latest-alias", event={}),
        SmokeTest(function=f"{ARN}:$LATEST", event={}),
        SmokeTest(function=ARN, event={}),
    ]
    problems = smoke_test_problems(
        tests, {"api"}, lambda _f: True, lambda n, a: (n, a) in on_latest
    )
    assert problems == [
        f"cutover.smoke_tests[0].function: {ARN}:3 invokes published version 3 (immutable: "
        "it keeps the old table); the cutover re-points $LATEST: smoke-test api instead",
        "cutover.smoke_tests[1].function: api:live invokes alias live on a published version "
        "(immutable: it keeps the old table); the cutover re-points $LATEST: smoke-test api "
        "instead",
    ]
