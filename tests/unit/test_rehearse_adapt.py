"""The rehearsal's pure parts: the template copy adapted for ministack (metric-math alarms
swapped, YAML definitions rendered as JSON, mappings it must disable), every adaptation
listed, and the step runner's record."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from rehearse.adapt import ALARM, STATE_MACHINE, adapt, asl_as_json, disabled_mappings
from rehearse.steps import Step, StepFailed, StepResult, run_steps, summary_table
from tests.unit.test_infra_template import INFRA, load_template

PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")


def substituted(text: str, values: dict[str, str]) -> str:
    """What CloudFormation does with DefinitionSubstitutions: text replaced, then parsed."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def values_for(text: str) -> dict[str, str]:
    out = {}
    for name in set(PLACEHOLDER.findall(text)):
        if name == "Partition":
            out[name] = "aws"
        elif name.endswith("Arn"):
            out[name] = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        else:
            out[name] = "16"
    return out


@pytest.mark.parametrize("name", ["backfill.asl.yaml", "reconcile.asl.yaml"])
def test_the_json_rendering_substitutes_to_the_same_definition_as_the_yaml(name: str) -> None:
    text = (INFRA / "statemachine" / name).read_text(encoding="utf-8")
    rendered = asl_as_json(text)
    # comments mention "${...}" in prose; the definition's own placeholders are all kept
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert set(PLACEHOLDER.findall(rendered)) == set(PLACEHOLDER.findall(body))
    values = values_for(body)
    from_yaml = yaml.safe_load(substituted(body, values))
    from_json = json.loads(substituted(rendered, values))
    assert from_json == from_yaml
    # a number stays a number (MaxConcurrency), an ARN a string
    assert any(isinstance(v, int) and v == 16 for v in _leaves(from_json))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_metric_math_alarms_are_swapped_for_plain_ones_and_each_is_listed() -> None:
    template = load_template()
    before = json.dumps(template, sort_keys=True)
    adapted = adapt(template, INFRA)
    assert json.dumps(template, sort_keys=True) == before  # the built template is untouched
    resources = template["Resources"]
    math = sorted(
        k for k, r in resources.items() if r["Type"] == ALARM and "Metrics" in r["Properties"]
    )
    assert math == ["QuarantineAlarm", "ReplicationFailuresAlarm"]
    for logical in math:
        props = adapted.template["Resources"][logical]["Properties"]
        assert "Metrics" not in props
        first = resources[logical]["Properties"]["Metrics"][1]["MetricStat"]
        assert props["MetricName"] == first["Metric"]["MetricName"]
        assert props["Namespace"] == first["Metric"]["Namespace"]
        assert props["Dimensions"] == first["Metric"]["Dimensions"]
        assert (props["Statistic"], props["Period"]) == (first["Stat"], first["Period"])
        assert props["Threshold"] == resources[logical]["Properties"]["Threshold"]
    listed = [a.subject for a in adapted.adaptations]
    assert [s for s in listed if "metric math" in s] == [
        f"{k}'s metric math (FILL(servers, 0) + FILL(memberships, 0))" for k in math
    ]
    assert all(a.line().startswith("not rehearsed: ") for a in adapted.adaptations)


def test_yaml_definitions_are_deployed_as_their_json_rendering_and_listed() -> None:
    template = load_template()
    adapted = adapt(template, INFRA)
    machines = sorted(k for k, r in template["Resources"].items() if r["Type"] == STATE_MACHINE)
    assert machines == ["BackfillStateMachine", "ReconcileStateMachine"]
    for logical in machines:
        props = adapted.template["Resources"][logical]["Properties"]
        name = props["DefinitionUri"]
        assert name == f"{logical}.asl.json"
        source = INFRA / template["Resources"][logical]["Properties"]["DefinitionUri"]
        assert adapted.definitions[name] == asl_as_json(source.read_text(encoding="utf-8"))
        # the substitutions still go to CloudFormation, unchanged
        assert (
            props["DefinitionSubstitutions"]
            == (template["Resources"][logical]["Properties"]["DefinitionSubstitutions"])
        )
    assert sum("YAML definition" in a.subject for a in adapted.adaptations) == 2
    assert len(adapted.adaptations) == 4  # two alarms, two definitions: nothing else


def test_everything_else_is_deployed_as_built() -> None:
    template = load_template()
    adapted = adapt(template, INFRA)
    changed = {a.subject.split("'")[0] for a in adapted.adaptations}
    for logical, resource in template["Resources"].items():
        if logical not in changed:
            assert adapted.template["Resources"][logical] == resource, logical
    assert {k: v for k, v in adapted.template.items() if k != "Resources"} == {
        k: v for k, v in template.items() if k != "Resources"
    }


def test_a_template_ministack_can_run_is_not_adapted(tmp_path: Any) -> None:
    (tmp_path / "sm.asl.json").write_text("{}", encoding="utf-8")
    template = {
        "Resources": {
            "Plain": {"Type": ALARM, "Properties": {"MetricName": "Errors", "Threshold": 0}},
            "Machine": {"Type": STATE_MACHINE, "Properties": {"DefinitionUri": "sm.asl.json"}},
        }
    }
    adapted = adapt(template, tmp_path)
    assert adapted.template == template and adapted.adaptations == () and not adapted.definitions


def test_the_mappings_to_disable_are_those_the_parameters_create_disabled() -> None:
    template = load_template()
    every = ["MembershipsStreamMapping", "ReverseStreamMapping", "ServersStreamMapping"]
    assert disabled_mappings(template, {}) == every
    assert disabled_mappings(template, {"MembershipsReplicationEnabled": "false"}) == every
    assert disabled_mappings(template, {"ServersReplicationEnabled": "true"}) == [
        "MembershipsStreamMapping",
        "ReverseStreamMapping",
    ]
    # the reverse mapping's Enabled is an Fn::If on ReverseReplicationLive: a deploy after
    # cutover (ReverseReplicationFrom given) creates it enabled
    assert disabled_mappings(template, {"ReverseReplicationFrom": "1790000000"}) == [
        "MembershipsStreamMapping",
        "ServersStreamMapping",
    ]


def test_conditions_resolve_as_cloudformation_evaluates_them() -> None:
    template: dict[str, Any] = {
        "Parameters": {"A": {"Default": "x"}, "B": {"Default": ""}},
        "Conditions": {
            "AIsX": {"Fn::Equals": [{"Ref": "A"}, "x"]},
            "Both": {"Fn::And": [{"Condition": "AIsX"}, {"Fn::Not": [{"Condition": "BEmpty"}]}]},
            "BEmpty": {"Fn::Equals": [{"Ref": "B"}, ""]},
            "Either": {"Fn::Or": [{"Condition": "Both"}, {"Condition": "BEmpty"}]},
        },
        "Resources": {
            name: {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"Enabled": {"Fn::If": [name, False, {"Ref": "A"}]}},
            }
            for name in ("AIsX", "Both", "Either")
        },
    }
    assert disabled_mappings(template, {}) == ["AIsX", "Either"]
    assert disabled_mappings(template, {"B": "y"}) == ["AIsX", "Both", "Either"]
    assert disabled_mappings(template, {"A": "false", "B": "y"}) == ["AIsX", "Both", "Either"]
    assert disabled_mappings(template, {"A": "true", "B": "y"}) == []


def _step(name: str, outcome: str | None) -> Step[list[str]]:
    def run(seen: list[str]) -> str:
        seen.append(name)
        if outcome is None:
            raise StepFailed(f"{name} broke")
        return outcome

    return Step("n. section", name, "deployed stack", run)


def test_steps_run_in_order_until_one_fails_and_the_rest_show_as_not_run() -> None:
    steps = [_step("a", "fine"), _step("b", None), _step("c", "never")]
    seen: list[str] = []
    reported: list[StepResult] = []
    results = run_steps(steps, seen, reported.append)
    assert seen == ["a", "b"] and reported == results
    assert [(r.action, r.ok, r.detail) for r in results] == [
        ("a", True, "fine"),
        ("b", False, "b broke"),
    ]
    table = summary_table(steps, results, "t")
    cells = [list(c.cells) for c in table.columns]
    assert cells[1] == ["a", "b", "c"]
    assert [str(x) for x in cells[3]] == [
        "[green]ok[/] fine",
        "[red]FAILED[/] b broke",
        "[yellow]not run[/]",
    ]
