"""Clone every CloudWatch alarm on an old table for its new table, so monitoring does not go
blind at the switch (DESIGN.md section 10); rollback deletes the clones.

Pure core: `clone_name` (deterministic: each old table name in the alarm's name becomes the
new one, or the new table is appended in brackets) and `clone_request` (the PutMetricAlarm
arguments: the same metric, threshold and actions with dimension TableName re-pointed, metric
math included).

Adapter: `AlarmClones` creates the clones tagged `dualwrite:clone-of` = the original's name.
Running it again updates its own clones in place (idempotent); an alarm of that name that
is not a dualwrite clone is left alone and reported. `delete` removes only alarms carrying
the tag, so a rollback can never delete an operator's alarm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.cutover.functions import TablePair
from dualwrite.cutover.pagination import pages
from dualwrite.cutover.references import OldTables, alarm_tables
from dualwrite.jsondoc import JsonObject

CLONE_TAG = "dualwrite:clone-of"
NAME_MAX = 255
DESCRIPTION_MAX = 1024
DELETE_MAX = 100  # names per DeleteAlarms call
# what PutMetricAlarm takes back from a DescribeAlarms MetricAlarm, as is
COPIED = (
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "ThresholdMetricId",
)
QUERY_FIELDS = ("Id", "Expression", "Label", "ReturnData", "Period", "AccountId")

# --- pure ---------------------------------------------------------------------------------


def clone_name(name: str, renames: Mapping[str, str]) -> str:
    """The clone's name: every old table named in `name` renamed (longest first); when none
    is, the new tables appended. Too long a name keeps a hash of the full one."""
    new = name
    for old in sorted(renames, key=len, reverse=True):
        new = new.replace(old, renames[old])
    if new == name:
        new = f"{name} [{', '.join(sorted(renames.values()))}]"
    return _fit(new)


def distinct_name(name: str, source: str) -> str:
    """A clone name another source alarm's clone already took (two old tables merged into
    one: ServersTable-throttles and UserMembershipTable-throttles both make
    CoreTable-throttles, and the second overwrote the first): its source said too."""
    return _fit(f"{name} (from {source})")


def _fit(name: str) -> str:
    if len(name) > NAME_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[: NAME_MAX - len(digest) - 1]}~{digest}"
    return name


def _dimensions(dims: Iterable[Mapping[str, Any]], renames: Mapping[str, str]) -> list[Any]:
    out = []
    for d in dims:
        value = d.get("Value")
        if d.get("Name") == "TableName" and value in renames:
            value = renames[str(value)]
        out.append({"Name": d["Name"], "Value": value})
    return out


def _query(query: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    out = {k: query[k] for k in QUERY_FIELDS if k in query}
    if "MetricStat" in query:
        stat = dict(query["MetricStat"])
        metric = dict(stat["Metric"])
        if "Dimensions" in metric:
            metric["Dimensions"] = _dimensions(metric["Dimensions"], renames)
        stat["Metric"] = metric
        out["MetricStat"] = stat
    return out


def clone_request(alarm: Mapping[str, Any], pairs: Mapping[str, str]) -> dict[str, Any] | None:
    """PutMetricAlarm arguments cloning `alarm` for the new tables; None when the alarm is
    on no old table. `pairs` maps old table name -> new table name."""
    old = OldTables(frozenset(pairs))
    tables = alarm_tables(alarm, old)
    if not tables:
        return None
    renames = {t: pairs[t] for t in tables}
    source = str(alarm["AlarmName"])
    note = f"Clone of {source} for {', '.join(renames[t] for t in tables)} (dualwrite cutover)."
    description = str(alarm.get("AlarmDescription") or "")
    description = f"{description} {note}".strip() if description else note
    request: dict[str, Any] = {
        "AlarmName": clone_name(source, renames),
        "AlarmDescription": description[:DESCRIPTION_MAX],
        "Tags": [{"Key": CLONE_TAG, "Value": source}],
    }
    request |= {k: alarm[k] for k in COPIED if k in alarm}
    if "Dimensions" in alarm:
        request["Dimensions"] = _dimensions(alarm["Dimensions"], renames)
    if alarm.get("Metrics"):
        request["Metrics"] = [_query(q, renames) for q in alarm["Metrics"]]
    return request


@dataclass(frozen=True)
class AlarmClone:
    """One clone: journaled by cutover, deleted by rollback."""

    source: str
    name: str
    created: bool  # False: it existed already (a cutover run again) and was updated

    def to_json(self) -> JsonObject:
        return {"source": self.source, "name": self.name, "created": self.created}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlarmClone:
        return cls(str(data["source"]), str(data["name"]), bool(data.get("created", True)))


@dataclass(frozen=True)
class CloneResult:
    clones: tuple[AlarmClone, ...] = ()
    notes: tuple[str, ...] = ()


# --- adapter ------------------------------------------------------------------------------


@dataclass
class AlarmClones:
    """Alarm clones through one CloudWatch client."""

    client: Any

    def alarms(self) -> list[dict[str, Any]]:
        found = pages(self.client.describe_alarms, "DescribeAlarms", "MetricAlarms", "NextToken")
        return [dict(a) for a in found]

    def _existing(self, name: str) -> dict[str, Any] | None:
        with aws_call(f"DescribeAlarms {name}"):
            found = self.client.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
        return dict(found[0]) if found else None

    def _is_clone(self, alarm: Mapping[str, Any]) -> bool:
        with aws_call(f"ListTagsForResource {alarm['AlarmName']}"):
            tags = self.client.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]).get("Tags", [])
        return any(t.get("Key") == CLONE_TAG for t in tags)

    def clone(
        self,
        pairs: Iterable[TablePair],
        *,
        on_cloned: Callable[[AlarmClone], None] = lambda _c: None,
    ) -> CloneResult:
        """Clone every alarm on an old table (dimension TableName) for its new table.
        `on_cloned` (the journal) hears of each clone just before it is made, so a failure
        or a kill half way leaves nothing a rollback does not know of."""
        renames = {p.source: p.target for p in pairs}
        clones: list[AlarmClone] = []
        notes: list[str] = []
        taken: set[str] = set()  # clone names of this run (alarms come in name order)
        for alarm in self.alarms():
            request = clone_request(alarm, renames)
            if request is None:
                continue
            if request["AlarmName"] in taken:
                request["AlarmName"] = distinct_name(request["AlarmName"], alarm["AlarmName"])
            taken.add(request["AlarmName"])
            existing = self._existing(request["AlarmName"])
            if existing is not None and not self._is_clone(existing):
                notes.append(
                    f"alarm {request['AlarmName']} exists and is not a dualwrite clone: "
                    f"{alarm['AlarmName']} not cloned"
                )
                continue
            if existing is not None:
                del request["Tags"]  # PutMetricAlarm ignores tags on an update anyway
            # journaled before it exists (the name is deterministic): a kill in between
            # leaves a journaled clone that delete skips if it was never made
            clone = AlarmClone(str(alarm["AlarmName"]), request["AlarmName"], existing is None)
            on_cloned(clone)
            clones.append(clone)
            with aws_call(f"PutMetricAlarm {request['AlarmName']}"):
                self.client.put_metric_alarm(**request)
        return CloneResult(tuple(clones), tuple(notes))

    def delete(self, clones: Iterable[AlarmClone]) -> CloneResult:
        """Delete the clones that still exist and carry the clone tag; returns those deleted
        (an alarm that is gone, or is not ours, is noted, not an error)."""
        doomed: list[AlarmClone] = []
        notes: list[str] = []
        for clone in clones:
            existing = self._existing(clone.name)
            if existing is None:
                continue
            if not self._is_clone(existing):
                notes.append(f"alarm {clone.name} is not a dualwrite clone: not deleted")
                continue
            doomed.append(clone)
        for i in range(0, len(doomed), DELETE_MAX):
            names = [c.name for c in doomed[i : i + DELETE_MAX]]
            with aws_call("DeleteAlarms"):
                self.client.delete_alarms(AlarmNames=names)
        return CloneResult(tuple(doomed), tuple(notes))
