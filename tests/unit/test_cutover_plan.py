"""The pure re-pointing plan: exact values only, everything else untouched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.cutover.functions import (
    FunctionEnv,
    Renames,
    TablePair,
    plan_changes,
    repoint,
    table_arn,
)
from dualwrite.cutover.iam import ACTIONS, AccessWarning, missing_actions

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
PAIRS = [
    TablePair("old-customers", "new-customers", ARN + "old-customers", ARN + "new-customers"),
    TablePair("old-invoices", "new-invoices", ARN + "old-invoices", ARN + "new-invoices"),
]
RENAMES = Renames.of(PAIRS)


def test_exact_names_and_arns_are_renamed() -> None:
    env = {
        "CUSTOMERS": "old-customers",
        "INVOICES_ARN": ARN + "old-invoices",
        "BUS": "old-customers-events",
    }
    assert repoint(env, RENAMES) == {
        "CUSTOMERS": "new-customers",
        "INVOICES_ARN": ARN + "new-invoices",
        "BUS": "old-customers-events",
    }


@pytest.mark.parametrize(
    "value",
    [
        "old-customers-logs",
        "old-customers,old-invoices",
        " old-customers",
        "old-customers ",
        "OLD-CUSTOMERS",
        ARN + "old-customers/stream/2024-01-01T00:00:00.000",
        ARN + "old-customers/index/email-index",
        "s3://bucket/old-customers/",
        "",
        "new-customers",
    ],
)
def test_values_that_merely_contain_a_table_name_stay(value: str) -> None:
    assert repoint({"V": value}, RENAMES) == {"V": value}


def test_plan_lists_only_functions_that_change_in_name_order() -> None:
    functions = [
        FunctionEnv("zeta", role="r", variables={"T": "old-invoices", "LEVEL": "INFO"}),
        FunctionEnv("alpha", role="r", variables={"T": "old-customers-x"}),
        FunctionEnv("beta", role="r", variables={"A": "old-customers", "B": ARN + "old-customers"}),
        FunctionEnv("empty", role="r", variables={}),
    ]
    plans = plan_changes(functions, RENAMES)
    assert [p.function for p in plans] == ["beta", "zeta"]
    beta, zeta = plans
    assert [(c.variable, c.old, c.new) for c in beta.changes] == [
        ("A", "old-customers", "new-customers"),
        ("B", ARN + "old-customers", ARN + "new-customers"),
    ]
    assert zeta.previous == {"T": "old-invoices", "LEVEL": "INFO"}
    assert zeta.updated == {"T": "new-invoices", "LEVEL": "INFO"}
    assert [c.to_json() for c in zeta.changes] == [
        {"function": "zeta", "variable": "T", "old": "old-invoices", "new": "new-invoices"}
    ]


def test_two_sources_into_one_target() -> None:
    renames = Renames.of(
        [
            TablePair("ServersTable", "CoreTable", ARN + "ServersTable", ARN + "CoreTable"),
            TablePair(
                "UserMembershipTable", "CoreTable", ARN + "UserMembershipTable", ARN + "CoreTable"
            ),
        ]
    )
    env = {"S": "ServersTable", "M": "UserMembershipTable", "C": "CoreTable"}
    assert repoint(env, renames) == {"S": "CoreTable", "M": "CoreTable", "C": "CoreTable"}


def test_table_arn_derivation() -> None:
    assert table_arn(ARN + "old-customers", "old-customers", "new-customers") == (
        ARN + "new-customers"
    )
    with pytest.raises(ValueError):
        table_arn(ARN + "other", "old-customers", "new-customers")


values = st.one_of(
    st.sampled_from(["old-customers", "old-invoices", ARN + "old-customers", ARN + "old-invoices"]),
    st.text(max_size=40),
)


@given(st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=12))
def test_repoint_changes_exactly_the_matching_variables(env: dict[str, str]) -> None:
    out = repoint(env, RENAMES)
    assert list(out) == list(env)  # same variables, same order
    for name, value in env.items():
        expected = RENAMES.values.get(value, value)
        assert out[name] == expected
    # idempotent: the new names are not renamed again
    assert repoint(out, RENAMES) == out


def test_iam_missing_actions_keeps_order_and_only_losses() -> None:
    old = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
    new = {"dynamodb:GetItem", "dynamodb:Scan"}
    assert missing_actions(old, new) == ("dynamodb:Query", "dynamodb:PutItem")
    assert missing_actions(new, set(ACTIONS)) == ()


def test_access_warning_messages() -> None:
    lost = AccessWarning("f", "arn:role/r", "new-t", ("dynamodb:PutItem",), True)
    assert lost.message() == (
        "function f: role arn:role/r can dynamodb:PutItem on the old table but not on new-t"
    )
    unknown = AccessWarning("f", "arn:role/r", "new-t", (), False, "IAM policy simulation is off")
    assert "could not check" in unknown.message() and "simulation is off" in unknown.message()
