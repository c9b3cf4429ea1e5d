"""Adapting a copy of the built template where ministack falls short, and only there.

Pure: template dicts and ASL text in, template dicts, JSON text and the list of adaptations
out. What `sam build` wrote is never changed; the rehearsal deploys the adapted copy and
prints every adaptation as "not rehearsed: ...". Measured gaps (ministack 1.5.33):
- CloudFormation refuses metric-math alarms ("Properties.Metrics (metric math) is not
  supported"): each is deployed as a plain alarm on its first metric.
- Step Functions substitutes DefinitionSubstitutions into the definition's text, then parses
  only JSON (AWS also takes YAML): a YAML definition is deployed as its JSON rendering.
- CloudFormation ignores `Enabled: false` on an event source mapping (its API honours it):
  disabled_mappings() names the mappings the rehearsal disables after deploying.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ALARM = "AWS::CloudWatch::Alarm"
STATE_MACHINE = "AWS::Serverless::StateMachine"
EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"

#: ASL fields that take a number: a placeholder standing for one stays unquoted in JSON, so
#: the substituted text parses to the number, as the substituted YAML does
NUMERIC_FIELDS = (
    "MaxConcurrency",
    "ToleratedFailurePercentage",
    "ToleratedFailureCount",
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "Seconds",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "MaxItems",
    "MaxItemsPerBatch",
    "MaxInputBytesPerBatch",
)
_QUOTED_NUMBER = re.compile(
    r'("(?:' + "|".join(NUMERIC_FIELDS) + r')": )"(\$\{[A-Za-z][A-Za-z0-9_]*\})"'
)


@dataclass(frozen=True)
class Adaptation:
    """One place where the rehearsal deploys or does something other than the template says."""

    subject: str  # what is not rehearsed as written
    gap: str  # what the emulator cannot do
    instead: str  # what the rehearsal does in its place

    def line(self) -> str:
        return f"not rehearsed: {self.subject} ({self.gap}); {self.instead}"


@dataclass(frozen=True)
class AdaptedTemplate:
    template: dict[str, Any]
    #: file name (beside the adapted template) -> JSON text of a state machine definition
    definitions: dict[str, str]
    adaptations: tuple[Adaptation, ...]


def asl_as_json(text: str) -> str:
    """A YAML state machine definition as JSON text, its ${...} placeholders kept for
    CloudFormation to substitute (quoted, except where the field takes a number)."""
    document = yaml.safe_load(text)
    return _QUOTED_NUMBER.sub(r"\1\2", json.dumps(document, indent=2)) + "\n"


def _plain_alarm(props: Mapping[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The alarm on its first metric (no math); returns it, the expression and that metric."""
    metrics = props["Metrics"]
    expression = next(str(m["Expression"]) for m in metrics if "Expression" in m)
    first = next(m["MetricStat"] for m in metrics if "MetricStat" in m)
    metric = first["Metric"]
    plain = {k: v for k, v in props.items() if k != "Metrics"}
    plain.update(
        Namespace=metric["Namespace"],
        MetricName=metric["MetricName"],
        Statistic=first["Stat"],
        Period=first["Period"],
    )
    if "Dimensions" in metric:
        plain["Dimensions"] = metric["Dimensions"]
    names = ", ".join(f"{d['Name']}={_shown(d['Value'])}" for d in metric.get("Dimensions", []))
    return plain, expression, f"{_shown(metric['MetricName'])} ({names})"


def _shown(value: Any) -> str:
    """A template value as a reader would name it (a Ref by its parameter)."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"!Ref {value['Ref']}"
    return str(value)


def adapt(template: Mapping[str, Any], template_dir: Path) -> AdaptedTemplate:
    """The built template (as `sam build` wrote it, in template_dir) adapted for ministack.

    Reads the YAML definitions its state machines name (DefinitionUri, relative to
    template_dir); returns their JSON renderings rather than writing them."""
    adapted = copy.deepcopy(dict(template))
    resources: dict[str, Any] = adapted["Resources"]
    adaptations: list[Adaptation] = []
    definitions: dict[str, str] = {}
    for logical in sorted(resources):
        resource = resources[logical]
        props = resource.get("Properties", {})
        if resource["Type"] == ALARM and "Metrics" in props:
            resource["Properties"], expression, metric = _plain_alarm(props)
            adaptations.append(
                Adaptation(
                    f"{logical}'s metric math ({expression})",
                    "ministack's CloudFormation refuses metric-math alarms",
                    f"deployed as a plain alarm on {metric}",
                )
            )
        uri = props.get("DefinitionUri")
        if resource["Type"] == STATE_MACHINE and isinstance(uri, str):
            source = Path(uri)
            if source.suffix not in (".yaml", ".yml"):
                continue
            text = (template_dir / source).read_text(encoding="utf-8")
            name = f"{logical}.asl.json"
            definitions[name] = asl_as_json(text)
            props["DefinitionUri"] = name
            adaptations.append(
                Adaptation(
                    f"{logical}'s YAML definition ({source.name}) as AWS reads it",
                    "ministack's Step Functions parses only JSON after substituting",
                    f"deployed its JSON rendering ({name}, same states and placeholders)",
                )
            )
    return AdaptedTemplate(adapted, definitions, tuple(adaptations))


def _resolved(value: Any, parameters: Mapping[str, str], template: Mapping[str, Any]) -> Any:
    """A property's value with these parameters: a Ref to a parameter, and an Fn::If on the
    template's conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition), resolved."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        defaults = template.get("Parameters", {})
        return parameters.get(name, defaults.get(name, {}).get("Default"))
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        condition, then, otherwise = value["Fn::If"]
        chosen = then if _holds(condition, parameters, template) else otherwise
        return _resolved(chosen, parameters, template)
    return value


def _holds(condition: Any, parameters: Mapping[str, str], template: Mapping[str, Any]) -> bool:
    """Whether a condition (by name, or an inline condition function) holds."""
    if isinstance(condition, str):
        return _holds(template.get("Conditions", {})[condition], parameters, template)
    ((fn, args),) = condition.items()
    if fn == "Condition":
        return _holds(args, parameters, template)
    if fn == "Fn::Equals":
        left, right = (_resolved(a, parameters, template) for a in args)
        return str(left) == str(right)
    if fn == "Fn::Not":
        return not _holds(args[0], parameters, template)
    if fn == "Fn::And":
        return all(_holds(a, parameters, template) for a in args)
    if fn == "Fn::Or":
        return any(_holds(a, parameters, template) for a in args)
    raise ValueError(f"condition function {fn} not understood")


def disabled_mappings(template: Mapping[str, Any], parameters: Mapping[str, str]) -> list[str]:
    """The event source mappings the template creates disabled, with these parameters."""
    found = []
    for logical, resource in sorted(template["Resources"].items()):
        if resource["Type"] != EVENT_SOURCE_MAPPING:
            continue
        enabled = _resolved(resource["Properties"].get("Enabled", True), parameters, template)
        if str(enabled).lower() == "false":
            found.append(logical)
    return found


def mapping_workaround(logical: str) -> Adaptation:
    return Adaptation(
        f"{logical} created disabled by CloudFormation",
        "ministack's CloudFormation ignores Enabled: false on an event source mapping",
        "emulator workaround: disabled it through the Lambda API right after the deploy",
    )
