"""`dualwrite demo`: a whole migration on a private embedded emulator.

Seed realistic legacy data, prepare, start the replicator and live application traffic, run
the backfill while traffic continues, let replication catch up, stop traffic, reconcile, read
the parity metrics back from CloudWatch, show a cutover dry run of sample functions, then
cut over with the safeguards of DESIGN.md section 10: an SSM parameter re-pointed, an alarm
cloned, a smoke test (the emulator's Docker-less Lambda answers with the event it is sent,
so `expect` matches the event) and a short watch with its progress bar. Then the
observation window (demo_reverse.py): the application writes CoreTable, reverse replication
carries those writes to the old tables, a rollback, and each write is found in the old tables.
Exit 0 only at 100% parity, a cutover that is done and a rollback that lost nothing.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.cli.context import AppContext
from dualwrite.cli.demo_reverse import observation_window
from dualwrite.emulator import Emulator
from dualwrite.traffic import TrafficPlan, TrafficStats, run_traffic

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "coretable.yaml"
SAMPLE_FUNCTIONS = {
    # the application's functions, as they name the legacy tables today
    "servers-api": {"SERVERS_TABLE": "ServersTable", "LOG_LEVEL": "info"},
    "membership-sync": {
        "MEMBERSHIPS_TABLE": "UserMembershipTable",
        "SERVERS_TABLE": "ServersTable",
        "ARCHIVE_PREFIX": "ServersTable-archive/",  # merely contains a name: stays
    },
    "billing-report": {"REPORT_BUCKET": "reports"},  # names no table: untouched
}
WATCH_SECONDS = 5  # a short watch for the demo; in production minutes (DESIGN.md section 10)
HEALTH_EVENT = {"path": "/health", "statusCode": 200}
SAMPLE_PARAMETERS = {  # SSM String parameters the application reads its table names from
    "/servers-api/table": "ServersTable",  # exactly an old name: re-pointed
    "/servers-api/archive": "ServersTable-archive",  # merely contains one: left alone
}


@dataclass(frozen=True)
class DemoOptions:
    servers: int
    memberships: int
    port: int = 0
    traffic_rate: float = 40.0
    #: seconds of live traffic after the backfill, replicated by the running replicator
    settle_s: float = 5.0
    seed: int = 1


def _demo_config(directory: Path) -> Path:
    """The CoreTable migration, with cutover discovering the sample functions."""
    data = yaml.safe_load(MIGRATION.read_text(encoding="utf-8"))
    data["cutover"] = {
        **data.get("cutover", {}),
        "discover": True,
        "smoke_tests": [
            {"function": "servers-api", "event": HEALTH_EVENT, "expect": {"statusCode": 200}}
        ],
        "watch_seconds": WATCH_SECONDS,
        "watch_alarms": ["servers-api-errors"],
    }
    path = directory / "coretable-demo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def _phase(app: AppContext, title: str) -> Iterator[None]:
    app.out.rule(f"[bold]{title}")
    started = time.monotonic()
    yield
    app.out.print(f"[dim]{title}: {time.monotonic() - started:.1f}s[/]")


class _Background:
    """A thread whose failure is reported, not swallowed."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = target()
            except BaseException as exc:  # reported by join()
                self.error = exc

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.result


def _sample_functions(app: AppContext) -> None:
    iam = app.clients.client("iam")
    role = iam.create_role(
        RoleName="demo-app-role",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    )["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return {}\n")
    for name, env in SAMPLE_FUNCTIONS.items():
        app.clients.lambda_.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": buffer.getvalue()},
            Environment={"Variables": env},
        )


def _echoing_lambda(endpoint: str) -> None:
    """Docker-less Lambda on the emulator: an invocation answers with its event."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _sample_monitoring(app: AppContext) -> None:
    """The application's SSM parameters and alarms: one alarm on ServersTable (cloned at the
    cutover for CoreTable), one on servers-api's errors (watched after the switch)."""
    ssm = app.clients.client("ssm")
    for name, value in SAMPLE_PARAMETERS.items():
        ssm.put_parameter(Name=name, Value=value, Type="String")
    alarms = {
        "ServersTable-throttles": (
            "AWS/DynamoDB",
            "WriteThrottleEvents",
            "TableName",
            "ServersTable",
        ),
        "servers-api-errors": ("AWS/Lambda", "Errors", "FunctionName", "servers-api"),
    }
    for name, (namespace, metric, dimension, value) in alarms.items():
        app.clients.cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": dimension, "Value": value}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )


def _cutover(app: AppContext) -> int:
    """The real cutover, safeguards included; its exit code."""
    from dualwrite.cli.cmd_cutover import cutover_flow

    try:
        cutover_flow(app, dry_run=False, force=False, reason=None, json_out=False, now=None)
    except typer.Exit as stop:
        return int(stop.exit_code)
    return 0


def _metrics_table(app: AppContext) -> Table:
    from dualwrite.status import read_metrics

    routes = [r.name for r in app.migration.routes]
    values = read_metrics(
        app.clients.cloudwatch, app.migration.metrics_namespace, routes, datetime.now(UTC)
    )
    names = ("ParityPercent", "ParityMissing", "ParityExtra", "ParityMismatched")
    table = Table(
        title=f"CloudWatch metrics read back (namespace {app.migration.metrics_namespace})",
        title_justify="left",
    )
    table.add_column("route")
    for name in names:
        table.add_column(name, justify="right")
    for route in routes:
        got = values.get(route, {})
        table.add_row(route, *(f"{got[n][0]:g}" if n in got else "[red]none[/]" for n in names))
    return table


def run_demo(parent: AppContext, options: DemoOptions) -> int:
    """The whole flow; returns the exit code (0 only at 100% parity)."""
    from dualwrite.cli.cmd_backfill import backfill_with_progress, print_result
    from dualwrite.cli.cmd_cutover import cutover_flow
    from dualwrite.cli.cmd_reconcile import print_reconcile
    from reconciler.job import run_reconcile
    from stream_replicator.runner import StreamRunner
    from stream_replicator.runner_settings import RunnerSettings

    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="dualwrite-demo-") as tmp,
        Emulator(port=options.port) as emulator,
    ):
        app = AppContext(
            config_path=_demo_config(Path(tmp)),
            endpoint_url=emulator.endpoint,
            region="us-east-1",
            has_credentials=False,
            out=parent.out,
            err=parent.err,
        )
        out = app.out
        out.print(
            f"[bold]dualwrite demo[/]: ServersTable + UserMembershipTable -> CoreTable on a "
            f"private emulator at {emulator.endpoint}"
        )
        with _phase(app, "1. seed legacy data"):
            data = seeding.generate(options.servers, options.memberships, options.seed)
            seeding.ensure_tables(app.clients)
            seeding.write_items(app.clients, seeding.SERVERS_TABLE, data.servers)
            seeding.write_items(app.clients, seeding.MEMBERSHIPS_TABLE, data.memberships)
            out.print(
                f"{len(data.servers):,} servers (every attribute type, a few of ~200 KB), "
                f"{len(data.memberships):,} memberships (unknown roles, missing emails)"
            )
        with _phase(app, "2. prepare: backups, streams, PITR, control table, CoreTable"):
            plan = preparing.analyze(app.migration, app.clients)
            for action in preparing.apply(app.migration, app.clients, plan):
                out.print(f"  {action.table}: {action.action}")
        with _phase(app, "3. replicator and live traffic start"):
            stop_replicator = threading.Event()
            stop_traffic = threading.Event()
            runner = StreamRunner(
                app.migration,
                app.clients,
                app.store,
                RunnerSettings(poll_interval=0.5, phase_interval=1.0),
            )
            replicator = _Background("replicator", lambda: runner.run(stop=stop_replicator))
            stats = TrafficStats()
            traffic_client = app.clients.client("dynamodb")
            traffic = _Background(
                "traffic",
                lambda: run_traffic(
                    traffic_client,
                    TrafficPlan(data, seed=options.seed + 1),
                    stop_traffic,
                    rate=options.traffic_rate,
                    stats=stats,
                ),
            )
            out.print(
                f"the replicator holds each route until its backfill completes; traffic: "
                f"~{options.traffic_rate:.0f} writes/s (inserts, updates, deletes, users "
                "losing their last membership)"
            )
        with _phase(app, "4. backfill while traffic continues"):
            result = backfill_with_progress(app, quiet=False)
            print_result(app, result)
        with _phase(app, "5. replication catches up; traffic stops"):
            stop_traffic.wait(options.settle_s)  # more live changes, replicated as they come
            stop_traffic.set()
            traffic.join()
            stop_replicator.set()
            background = replicator.join()
            final = StreamRunner(app.migration, app.clients, app.store).run(until_caught_up=True)
            out.print(
                f"traffic: {stats.ops:,} writes ({stats.puts:,} puts, {stats.deletes:,} deletes); "
                f"replicated {background.records + final.records:,} stream records, "
                f"{background.quarantined + final.quarantined} quarantined; caught up: "
                f"{'yes' if final.caught_up else 'NO'}"
            )
        with _phase(app, "6. reconcile"):
            parity = run_reconcile(app.migration, app.clients, app.store)
            print_reconcile(app, parity)
            out.print(_metrics_table(app))
        with _phase(app, "7. cutover dry run (sample Lambda functions, SSM, alarms)"):
            _echoing_lambda(emulator.endpoint)
            _sample_functions(app)
            _sample_monitoring(app)
            cutover_flow(app, dry_run=True, force=False, reason=None, json_out=False, now=None)
        if not parity.parity:
            elapsed = time.monotonic() - started
            out.print(f"[bold red]drift found[/] - the demo took {elapsed:.0f}s")
            return 3
        with _phase(app, f"8. cutover: smoke test, then a {WATCH_SECONDS} s watch"):
            code = _cutover(app)
        elapsed = time.monotonic() - started
        if code != 0:
            out.print(f"[bold red]cutover not done (exit {code})[/] - the demo took {elapsed:.0f}s")
            return code
        code = observation_window(app, data, _phase)
        elapsed = time.monotonic() - started
        if code != 0:
            out.print(f"[bold red]rollback lost writes (exit {code})[/] - took {elapsed:.0f}s")
            return code
        out.print(
            f"[bold green]100% parity, cut over, rolled back losing nothing[/] - the demo took "
            f"{elapsed:.0f}s"
        )
        return 0
