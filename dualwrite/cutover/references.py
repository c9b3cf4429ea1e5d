"""Every place outside the re-pointed functions that names an old table (DESIGN.md section 10).

Pure core: `OldTables` (the old names and ARNs), `names_in` (which old tables a text names),
`json_hits` (where in a JSON document) and one builder per kind turning what AWS describes
into `Reference`s. A table is named when its name appears as a whole token: not inside a
longer name ("orders" is not named by "orders-archive"), but inside an ARN or a stream ARN
("...:table/orders/stream/...") it is, since a DynamoDB name or ARN is what every kind holds.

Adapter: `ReferenceScanner` makes the paginated, read-only calls (DescribeAlarms,
ListDashboards/GetDashboard, DescribeParameters/GetParameters, ListStateMachines/
DescribeStateMachine, ListTaskDefinitionFamilies/DescribeTaskDefinition, ListPipes/
DescribePipe). A kind the caller may not list, or one item of it that cannot be read (denied
under IAM scoped to the application's resources, or deleted since it was listed), is
reported in `Discovery.skipped`, not fatal: discovery only informs the plan, and the kind's
other items still count. SecureString parameters are never decrypted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rich.table import Table
from rich.text import Text

from dualwrite.aws.errors import aws_call
from dualwrite.cutover.functions import TablePair
from dualwrite.cutover.pagination import pages as _pages
from dualwrite.cutover.ssm import readable_parameters
from dualwrite.errors import AwsError, EndpointError

ALARM = "cloudwatch_alarm"
DASHBOARD = "cloudwatch_dashboard"
SSM_PARAMETER = "ssm_parameter"
STATE_MACHINE = "step_functions_state_machine"
TASK_DEFINITION = "ecs_task_definition"
PIPE = "eventbridge_pipe"
LAMBDA_FUNCTION = "lambda_function"
KINDS = (ALARM, DASHBOARD, SSM_PARAMETER, STATE_MACHINE, TASK_DEFINITION, PIPE, LAMBDA_FUNCTION)

# --- pure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    kind: str
    name: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class OldTables:
    """The old tables by name; `arns` maps each old ARN to its table name."""

    names: frozenset[str]
    arns: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, pairs: Iterable[TablePair]) -> OldTables:
        pairs = list(pairs)
        return cls(frozenset(p.source for p in pairs), {p.source_arn: p.source for p in pairs})

    def table_of(self, value: str) -> str | None:
        """The old table `value` is exactly (its name or ARN), else None."""
        if value in self.names:
            return value
        return self.arns.get(value)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        # longest first, so a name that extends another is found as itself
        alternatives = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
        # DynamoDB names are [A-Za-z0-9_.-]: a neighbour of those makes another name, except
        # a full stop that ends a sentence (one not followed by another name character)
        c = r"[A-Za-z0-9_\-]"
        return re.compile(rf"(?<!{c})(?<!{c}\.)({alternatives})(?!{c}|\.{c})")

    def names_in(self, text: str) -> tuple[str, ...]:
        """The old tables `text` names, sorted."""
        if not self.names or not text:
            return ()
        return tuple(sorted(set(self._pattern.findall(text))))


def json_hits(document: Any, old: OldTables, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, table) for every string in `document` that names an old table."""
    if isinstance(document, Mapping):
        for key, value in document.items():
            yield from json_hits(value, old, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list | tuple):
        for i, value in enumerate(document):
            yield from json_hits(value, old, f"{path}[{i}]")
    elif isinstance(document, str):
        for table in old.names_in(document):
            yield path or "(value)", table


def document_references(kind: str, name: str, document: Any, old: OldTables) -> list[Reference]:
    """One reference per (place, table) in a JSON document (a string holding JSON is parsed;
    a string that is not JSON is searched as text)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return [Reference(kind, name, f"names {t}") for t in old.names_in(document)]
    return [
        Reference(kind, name, f"{where} names {table}") for where, table in json_hits(document, old)
    ]


def _metric_tables(metric: Mapping[str, Any], old: OldTables) -> list[str]:
    return [
        str(d["Value"])
        for d in metric.get("Dimensions", [])
        if d.get("Name") == "TableName" and d.get("Value") in old.names
    ]


def alarm_tables(alarm: Mapping[str, Any], old: OldTables) -> list[str]:
    """The old tables a metric alarm watches (dimension TableName), metric math included."""
    tables = _metric_tables(alarm, old)
    for query in alarm.get("Metrics", []):
        tables += _metric_tables(query.get("MetricStat", {}).get("Metric", {}), old)
    return sorted(set(tables))


def alarm_references(alarms: Iterable[Mapping[str, Any]], old: OldTables) -> list[Reference]:
    return [
        Reference(ALARM, str(a["AlarmName"]), f"dimension TableName = {table}")
        for a in alarms
        for table in alarm_tables(a, old)
    ]


def environment_references(
    name: str, variables: Mapping[str, Any], old: OldTables, where: str = ""
) -> list[Reference]:
    """A function's environment variables that are (or name) an old table."""
    out: list[Reference] = []
    for var, value in sorted(variables.items()):
        exact = old.table_of(str(value))
        tables = [exact] if exact is not None else old.names_in(str(value))
        out += [Reference(LAMBDA_FUNCTION, name, f"{where}{var} names {t}") for t in tables]
    return out


def parameter_references(
    parameters: Iterable[Mapping[str, Any]], old: OldTables
) -> list[Reference]:
    """String and StringList values (`Name`, `Type`, `Value`); an exact String value is the
    one cutover re-points (ssm.py)."""
    out: list[Reference] = []
    for p in parameters:
        value = str(p.get("Value", ""))
        exact = old.table_of(value) if p.get("Type") == "String" else None
        if exact is not None:
            out.append(
                Reference(
                    SSM_PARAMETER, str(p["Name"]), f"value is {exact} (re-pointed at cutover)"
                )
            )
            continue
        out += [
            Reference(SSM_PARAMETER, str(p["Name"]), f"value names {t}")
            for t in old.names_in(value)
        ]
    return out


def sorted_references(references: Iterable[Reference]) -> list[Reference]:
    """Kind (in KINDS order), then name, then detail; duplicates once."""
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(set(references), key=lambda r: (order.get(r.kind, len(order)), r.name, r.detail))


def references_table(references: Iterable[Reference]) -> Table:
    """The human rendering for plan and cutover --dry-run."""
    rows = sorted_references(references)
    table = Table(title="Other places that name an old table", title_justify="left")
    table.add_column("Kind")
    table.add_column("Name", overflow="fold")
    table.add_column("Detail", overflow="fold")
    for r in rows:  # as text: "[prod] old-t" is an alarm's name, not markup
        table.add_row(Text(r.kind), Text(r.name), Text(r.detail))
    if not rows:
        table.caption = "none found"
    return table


# --- adapter ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    kind: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Discovery:
    references: tuple[Reference, ...]
    skipped: tuple[Skipped, ...] = ()


@dataclass
class ReferenceScanner:
    """Read-only discovery through a Clients-like factory (`client(service)`). `repointed`:
    the functions the cutover re-points ($LATEST of those is not another place)."""

    clients: Any
    repointed: frozenset[str] = frozenset()
    #: the items the running scan could not read
    _skipped: list[Skipped] = field(default_factory=list)

    def _read(self, kind: str, operation: str, call: Callable[..., Any], **kwargs: Any) -> Any:
        """One item's read, `call(**kwargs)`; None (the item skipped) when denied or gone."""
        try:
            with aws_call(operation):
                return call(**kwargs)
        except AwsError as exc:
            self._skipped.append(Skipped(kind, str(exc)))
            return None

    def functions(self, old: OldTables) -> list[Reference]:
        """Functions the cutover does not re-point whose environment names an old table (a
        writer left on it), and published versions behind aliases: immutable, they keep the
        old table whatever the cutover does to $LATEST (SAM's AutoPublishAlias serves one,
        and a weighted alias, CodeDeploy's canary, sends a share of traffic to a second)."""
        lam = self.clients.client("lambda")
        out: list[Reference] = []
        for fn in _pages(
            lam.list_functions, "ListFunctions", "Functions", "NextMarker", request_token="Marker"
        ):
            name = str(fn["FunctionName"])
            if name not in self.repointed:
                env = (fn.get("Environment") or {}).get("Variables") or {}
                out += environment_references(name, env, old)
            try:
                aliases = list(
                    _pages(
                        lam.list_aliases,
                        f"ListAliases {name}",
                        "Aliases",
                        "NextMarker",
                        request_token="Marker",
                        FunctionName=name,
                    )
                )
            except AwsError as exc:
                self._skipped.append(Skipped(LAMBDA_FUNCTION, str(exc)))
                continue
            for alias in aliases:
                out += self._alias_references(lam, name, alias, old)
        return out

    def _alias_references(
        self, lam: Any, name: str, alias: Mapping[str, Any], old: OldTables
    ) -> list[Reference]:
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        versions = [str(alias.get("FunctionVersion", "$LATEST")), *map(str, weights)]
        out: list[Reference] = []
        for version in dict.fromkeys(versions):
            if version == "$LATEST":
                continue
            config = self._read(
                LAMBDA_FUNCTION,
                f"GetFunctionConfiguration {name}:{version}",
                lam.get_function_configuration,
                FunctionName=name,
                Qualifier=version,
            )
            if config is None:
                continue
            env = (config.get("Environment") or {}).get("Variables") or {}
            share = f" ({float(weights[version]):.0%} of its traffic)" if version in weights else ""
            where = (
                f"alias {alias['Name']} runs published version {version}{share} (immutable: "
                "publish a new version after the cutover), whose "
            )
            out += environment_references(f"{name}:{alias['Name']}", env, old, where)
        return out

    def alarms(self, old: OldTables) -> list[Reference]:
        cw = self.clients.client("cloudwatch")
        found = _pages(cw.describe_alarms, "DescribeAlarms", "MetricAlarms", "NextToken")
        return alarm_references(found, old)

    def dashboards(self, old: OldTables) -> list[Reference]:
        cw = self.clients.client("cloudwatch")
        out: list[Reference] = []
        for entry in _pages(cw.list_dashboards, "ListDashboards", "DashboardEntries", "NextToken"):
            name = str(entry["DashboardName"])
            got = self._read(
                DASHBOARD, f"GetDashboard {name}", cw.get_dashboard, DashboardName=name
            )
            if got is not None:
                out += document_references(DASHBOARD, name, str(got.get("DashboardBody", "")), old)
        return out

    def parameters(self, old: OldTables) -> list[Reference]:
        denied: list[str] = []
        out = parameter_references(readable_parameters(self.clients.client("ssm"), denied), old)
        if denied:
            shown = ", ".join(denied[:5]) + (
                f" and {len(denied) - 5} more" if len(denied) > 5 else ""
            )
            self._skipped.append(
                Skipped(SSM_PARAMETER, f"GetParameter: AccessDenied for {len(denied)}: {shown}")
            )
        return out

    def state_machines(self, old: OldTables) -> list[Reference]:
        sfn = self.clients.client("stepfunctions")
        out: list[Reference] = []
        for sm in _pages(
            sfn.list_state_machines, "ListStateMachines", "stateMachines", "nextToken"
        ):
            definition = self._read(
                STATE_MACHINE,
                f"DescribeStateMachine {sm['name']}",
                sfn.describe_state_machine,
                stateMachineArn=sm["stateMachineArn"],
            )
            if definition is None:
                continue
            out += document_references(
                STATE_MACHINE, str(sm["name"]), str(definition.get("definition", "")), old
            )
        return out

    def task_definitions(self, old: OldTables) -> list[Reference]:
        """The latest ACTIVE revision of each family, and every revision a service runs
        (a service still on revision 1 after revision 2 was registered runs the old one)."""
        ecs = self.clients.client("ecs")
        wanted = list(
            _pages(
                ecs.list_task_definition_families,
                "ListTaskDefinitionFamilies",
                "families",
                "nextToken",
                status="ACTIVE",
            )
        )
        wanted += self._running_revisions(ecs)
        out: list[Reference] = []
        seen: set[str] = set()
        for wanted_td in wanted:
            described = self._read(
                TASK_DEFINITION,
                f"DescribeTaskDefinition {wanted_td}",
                ecs.describe_task_definition,
                taskDefinition=wanted_td,
            )
            if described is None:
                continue
            td = described["taskDefinition"]
            name = f"{td.get('family', wanted_td)}:{td.get('revision', '?')}"
            if name in seen:
                continue
            seen.add(name)
            body = {k: td[k] for k in ("containerDefinitions", "volumes") if k in td}
            out += document_references(TASK_DEFINITION, name, body, old)
        return out

    def _running_revisions(self, ecs: Any) -> list[str]:
        """The task definitions (ARNs) the services of every cluster run."""
        out: list[str] = []
        for cluster in _pages(ecs.list_clusters, "ListClusters", "clusterArns", "nextToken"):
            try:
                arns = list(
                    _pages(
                        ecs.list_services,
                        f"ListServices {cluster}",
                        "serviceArns",
                        "nextToken",
                        cluster=cluster,
                    )
                )
            except AwsError as exc:
                self._skipped.append(Skipped(TASK_DEFINITION, str(exc)))
                continue
            for i in range(0, len(arns), 10):  # DescribeServices takes 10 at a time
                described = self._read(
                    TASK_DEFINITION,
                    f"DescribeServices {cluster}",
                    ecs.describe_services,
                    cluster=cluster,
                    services=arns[i : i + 10],
                )
                for svc in (described or {}).get("services", []):
                    # an EXTERNAL deployment controller's service names its revisions in
                    # its task sets only (no primary task set: no taskDefinition at all)
                    runs = [svc.get("taskDefinition")]
                    runs += [t.get("taskDefinition") for t in svc.get("taskSets") or []]
                    out += [str(r) for r in runs if r]
        return out

    def pipes(self, old: OldTables) -> list[Reference]:
        client = self.clients.client("pipes")
        out: list[Reference] = []
        for listed in _pages(client.list_pipes, "ListPipes", "Pipes", "NextToken"):
            name = str(listed["Name"])
            pipe = self._read(PIPE, f"DescribePipe {name}", client.describe_pipe, Name=name)
            if pipe is None:
                continue
            body = {
                k: pipe[k]
                for k in (
                    "Source",
                    "SourceParameters",
                    "Enrichment",
                    "EnrichmentParameters",
                    "Target",
                    "TargetParameters",
                )
                if k in pipe
            }
            out += document_references(PIPE, name, body, old)
        return out

    def discover(self, old: OldTables) -> Discovery:
        scans: list[tuple[str, Callable[[OldTables], list[Reference]]]] = [
            (ALARM, self.alarms),
            (DASHBOARD, self.dashboards),
            (SSM_PARAMETER, self.parameters),
            (STATE_MACHINE, self.state_machines),
            (TASK_DEFINITION, self.task_definitions),
            (PIPE, self.pipes),
            (LAMBDA_FUNCTION, self.functions),
        ]
        found: list[Reference] = []
        self._skipped = []
        for kind, scan in scans:
            try:
                found += scan(old)
            # e.g. AccessDenied on one service's listing, or its endpoint unreachable (Pipes
            # in a region without it): the others still count
            except (AwsError, EndpointError) as exc:
                self._skipped.append(Skipped(kind, str(exc)))
        return Discovery(tuple(sorted_references(found)), tuple(self._skipped))


def discover_references(
    clients: Any, pairs: Iterable[TablePair], repointed: Iterable[str] = ()
) -> Discovery:
    """Every place outside the `repointed` functions that names an old table of `pairs`
    (for plan and cutover --dry-run)."""
    return ReferenceScanner(clients, frozenset(repointed)).discover(OldTables.of(pairs))
