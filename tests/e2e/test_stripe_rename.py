"""The Stripe table rename, end to end through the real `dualwrite` command on the emulator.

Four `ai-nexus-dev-stripe-*` tables (GSIs, an LSI, SSE with a KMS key, tags, TTL, one
PROVISIONED, one with deletion protection) and eight Lambda functions that name them, plus
functions and variables that merely contain a table name. prepare clones the schemas, backfill
copies, reconcile proves parity; then the cutover gate's refusals, a dry run, the cutover,
rollback, a second cutover, and decommission refused inside the observation window and done
after it (the clock is moved with the hidden --now option).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.control import ControlStore
from tests.conftest import MIGRATIONS, ROOT, Cli
from tests.stripe_world import NAMES, NEW, OLD, create_stripe_tables, schema

pytestmark = pytest.mark.e2e

PLAN = MIGRATIONS / "stripe-rename.yaml"
CONTROL = "dualwrite-stripe-control"


def _arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"


# --- the world before the migration -------------------------------------------------------


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


def plan_functions() -> dict[str, dict[str, str]]:
    """The eight functions of the plan and the unrelated ones, with their environments."""
    t = {n: OLD + n for n in NAMES}
    return {
        "stripe-webhook-handler": {
            "CUSTOMERS_TABLE": t["customers"],
            "SUBSCRIPTIONS_TABLE": t["subscriptions"],
            "INVOICES_TABLE": t["invoices"],
            "IDEMPOTENCY_TABLE": t["idempotency"],
            "EVENTBRIDGE_BUS_NAME": "ai-nexus-dev-stripe-events",
        },
        "stripe-checkout-session": {
            "CUSTOMERS_TABLE": t["customers"],
            "IDEMPOTENCY_TABLE": t["idempotency"],
            "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stripe",
        },
        "stripe-customer-portal": {"CUSTOMERS_TABLE": t["customers"]},
        "stripe-subscription-sync": {
            "SUBSCRIPTIONS_TABLE": t["subscriptions"],
            "CUSTOMERS_TABLE_ARN": _arn(t["customers"]),
        },
        "stripe-invoice-generator": {
            "INVOICES_TABLE": t["invoices"],
            "SUBSCRIPTIONS_TABLE": t["subscriptions"],
        },
        "stripe-payment-retry": {
            "INVOICES_TABLE": t["invoices"],
            "LOG_PREFIX": t["invoices"] + "-retry",
        },
        "stripe-usage-reporter": {"SUBSCRIPTIONS_TABLE": t["subscriptions"]},
        "stripe-idempotency-janitor": {"IDEMPOTENCY_TABLE": t["idempotency"]},
        # unrelated: values merely CONTAIN a table name, or name other tables
        "analytics-exporter": {
            "SOURCE_TABLES": f"{t['customers']},{t['invoices']}",
            "ARCHIVE_PREFIX": f"s3://ai-nexus-archive/{t['customers']}/",
            "STREAM_ARN": _arn(t["customers"]) + "/stream/2024-01-01T00:00:00.000",
            "PADDED": " " + t["customers"],
            "UPPER": t["customers"].upper(),
        },
        "user-service": {"USERS_TABLE": "ai-nexus-dev-users"},
        "billing-dashboard": {},
    }


def create_functions(clients: Clients) -> None:
    iam = clients.client("iam")
    role = iam.create_role(
        RoleName="stripe-lambda-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = _zip()
    for name, env in plan_functions().items():
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": role,
            "Handler": "handler.handler",
            "Code": {"ZipFile": code},
        }
        if env:
            kwargs["Environment"] = {"Variables": env}
        clients.lambda_.create_function(**kwargs)


def environments(clients: Clients) -> dict[str, dict[str, str]]:
    out = {}
    for name in plan_functions():
        config = clients.lambda_.get_function_configuration(FunctionName=name)
        out[name] = dict((config.get("Environment") or {}).get("Variables") or {})
    return out


def cut_over_env(env: dict[str, str]) -> dict[str, str]:
    """What the cutover must produce: exact old names and ARNs renamed, nothing else."""
    exact = {OLD + n: NEW + n for n in NAMES} | {_arn(OLD + n): _arn(NEW + n) for n in NAMES}
    return {k: exact.get(v, v) for k, v in env.items()}


# --- schema comparison --------------------------------------------------------------------


def items(clients: Clients, table: str) -> list[dict[str, Any]]:
    got = clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(got, key=lambda i: json.dumps(i, sort_keys=True, default=str))


def iso_in(delta: timedelta, base: datetime | None = None) -> str:
    return ((base or datetime.now(UTC)) + delta).isoformat()


# --- the plan, step by step ---------------------------------------------------------------


def test_stripe_rename_end_to_end(cli: Cli, emulator_clients: Clients) -> None:
    clients = emulator_clients
    ddb = clients.dynamodb
    key_arn = create_stripe_tables(clients)
    create_functions(clients)
    original = environments(clients)
    assert original == plan_functions()

    # prepare: backups, streams, PITR, control table, four cloned tables
    prepared = cli.run(PLAN, "prepare", "--json")
    assert prepared.code == 0, prepared.stderr
    for n in NAMES:
        assert schema(clients, NEW + n) == schema(clients, OLD + n), n
    assert schema(clients, NEW + "customers")["SSE"] == ("ENABLED", "KMS", key_arn)
    assert schema(clients, NEW + "subscriptions")["throughput"] == (7, 4)
    assert schema(clients, NEW + "invoices")["LSIs"][0]["name"] == "createdAt-index"
    assert schema(clients, NEW + "idempotency")["TTL"] == ("ENABLED", "expiresAt")
    assert schema(clients, NEW + "customers")["deletion protection"] is True

    # no reconcile yet: the gate refuses and nothing changes
    refused = cli.run(PLAN, "cutover", "--json")
    assert refused.code == 4, refused.stderr
    assert refused.json()["refused"] is True and refused.json()["status"] == "refused"
    assert any("no reconcile recorded" in r for r in refused.json()["gate"]["reasons"])
    assert environments(clients) == original

    # --force without --reason is bad usage
    assert cli.run(PLAN, "cutover", "--force").code == 2

    # copy and prove parity
    backfilled = cli.run(PLAN, "backfill", "--json")
    assert backfilled.code == 0, backfilled.stderr
    assert sum(r["items_written"] for r in backfilled.json()["routes"]) == 6 * 5
    for n in NAMES:
        assert items(clients, NEW + n) == items(clients, OLD + n), n
    reconciled = cli.run(PLAN, "reconcile", "--json")
    assert reconciled.code == 0, reconciled.stderr
    assert reconciled.json()["parity"] is True

    # a reconcile 20 minutes old is stale (limit 15)
    stale = cli.run(PLAN, "cutover", "--json", "--now", iso_in(timedelta(minutes=20)))
    assert stale.code == 4
    assert any("reconcile is" in r and "old" in r for r in stale.json()["gate"]["reasons"])

    # an unresolved quarantined item blocks the cutover until resolved
    store = ControlStore(ddb, CONTROL)
    qid = store.quarantine("invoices", "test: unmappable", {"Keys": {"customerId": {"S": "x"}}})
    quarantined = cli.run(PLAN, "cutover", "--json")
    assert quarantined.code == 4
    assert [c["subject"] for c in quarantined.json()["gate"]["checks"] if not c["ok"]] == [
        "invoices"
    ]
    # a dry run reports, so it succeeds; its JSON says the cutover would be refused
    refused_dry = cli.run(PLAN, "cutover", "--dry-run", "--json")
    assert refused_dry.code == 0, refused_dry.stderr
    assert refused_dry.json()["would_cut_over"] is False
    assert refused_dry.json()["gate"]["ok"] is False
    store.resolve_quarantine(qid, "checked by hand")

    # a change on a source that replication has not applied, 5 minutes later: not caught up
    same = ddb.get_item(TableName=OLD + "customers", Key={"customerId": {"S": "cus_000"}})
    ddb.put_item(TableName=OLD + "customers", Item=same["Item"])  # a write changing nothing
    behind = cli.run(PLAN, "cutover", "--json", "--now", iso_in(timedelta(minutes=5)))
    assert behind.code == 4
    reasons = behind.json()["gate"]["reasons"]
    assert len(reasons) == 1 and reasons[0].startswith("customers: replication has not caught up")
    replicated = cli.run(PLAN, "replicate", "--until-caught-up", "--json")
    assert replicated.code == 0, replicated.stderr

    # dry run: the table of planned changes, nothing changed
    dry = cli.run(PLAN, "cutover", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "cutover would change" in dry.stdout and "gate: passed" in dry.stdout
    for header in ("function", "variable", "old value", "new value"):
        assert header in dry.stdout
    print(dry.stdout)  # the report quotes this table
    dry_json = cli.run(PLAN, "cutover", "--dry-run", "--json").json()
    expected_changes = sorted(
        (fn, var, old, new)
        for fn, env in original.items()
        for var, old in env.items()
        if (new := cut_over_env(env)[var]) != old
    )
    assert (
        sorted((c["function"], c["variable"], c["old"], c["new"]) for c in dry_json["changes"])
        == expected_changes
    )
    assert len(expected_changes) == 14
    assert dry_json["gate"]["ok"] is True and dry_json["cut_over"] is False
    assert dry_json["would_cut_over"] is True
    assert environments(clients) == original

    # cutover: exactly the planned variables change
    first = cli.run(PLAN, "cutover", "--json")
    assert first.code == 0, first.stderr
    assert first.json()["cut_over"] is True and first.json()["status"] == "done"
    assert environments(clients) == {fn: cut_over_env(env) for fn, env in original.items()}
    assert environments(clients)["analytics-exporter"] == original["analytics-exporter"]
    assert any("could not check" in w for w in first.json()["warnings"])

    # a second cutover finds nothing left to do
    again = cli.run(PLAN, "cutover", "--json")
    assert again.code == 0 and again.json().get("already_cut_over") is True
    assert again.json()["status"] == "done"

    # rollback: exactly the journaled environments; idempotent
    rolled = cli.run(PLAN, "rollback", "--json")
    assert rolled.code == 0, rolled.stderr
    assert rolled.json()["rolled_back"] is True and rolled.json()["status"] == "done"
    assert environments(clients) == original
    twice = cli.run(PLAN, "rollback", "--json")
    assert twice.code == 0 and twice.json()["already_rolled_back"] is True
    assert environments(clients) == original

    # decommission right after a rollback: refused
    after_rollback = cli.run(
        PLAN, "decommission", "--yes", "--json", "--now", iso_in(timedelta(days=30))
    )
    assert after_rollback.code == 4
    assert any("rolled back" in r for r in after_rollback.json()["gate"]["reasons"])

    # cut over again: a new journal entry starts the observation window
    second = cli.run(PLAN, "cutover", "--json")
    assert second.code == 0, second.stderr
    assert second.json()["journal"] != first.json()["journal"]
    assert environments(clients) == {fn: cut_over_env(env) for fn, env in original.items()}
    cut_at = datetime.fromisoformat(second.json()["at"])
    journal = [r.data for r in store.query("CUTOVER")]
    assert [(j["action"], j["status"]) for j in journal] == [
        ("cutover", "applied"),
        ("rollback", "applied"),
        ("cutover", "applied"),
    ]
    webhook = next(f for f in journal[0]["functions"] if f["name"] == "stripe-webhook-handler")
    assert webhook["previous"] == original["stripe-webhook-handler"]

    # decommission inside the observation window: refused, nothing deleted
    early = cli.run(
        PLAN, "decommission", "--yes", "--json", "--now", iso_in(timedelta(days=1), cut_at)
    )
    assert early.code == 4
    assert any("observation window is not over" in r for r in early.json()["gate"]["reasons"])
    assert all(OLD + n in ddb.list_tables()["TableNames"] for n in NAMES)

    # after it: deletion protection (customers) refuses without --yes
    later = iso_in(timedelta(days=8), cut_at)
    protected = cli.run(PLAN, "decommission", "--json", "--now", later)
    assert protected.code == 4
    assert protected.json()["gate"]["reasons"] == [
        f"{OLD}customers: deletion protection is on: pass --yes to turn it off and delete"
    ]
    assert OLD + "customers" in ddb.list_tables()["TableNames"]

    done = cli.run(PLAN, "decommission", "--yes", "--json", "--now", later)
    assert done.code == 0, done.stderr
    assert sorted(done.json()["decommissioned"]) == sorted(OLD + n for n in NAMES)
    assert done.json()["deletion_protection_disabled"] == [OLD + "customers"]
    remaining = set(ddb.list_tables()["TableNames"])
    assert not remaining & {OLD + n for n in NAMES}
    assert {NEW + n for n in NAMES} <= remaining
    for n in NAMES:
        backups = ddb.list_backups(TableName=OLD + n)["BackupSummaries"]
        names = [b["BackupName"] for b in backups]
        assert any(b.startswith("dualwrite-decommission-") for b in names), names
        assert done.json()["backups"][OLD + n] in [b["BackupArn"] for b in backups]
        assert store.get("DECOMMISSION", OLD + n) is not None

    # idempotent: the tables are already gone
    gone = cli.run(PLAN, "decommission", "--json", "--now", later)
    assert gone.code == 0
    assert sorted(gone.json()["already_gone"]) == sorted(OLD + n for n in NAMES)
    assert gone.json()["decommissioned"] == []

    # no rollback onto deleted tables
    cut_env = {fn: cut_over_env(env) for fn, env in original.items()}
    too_late = cli.run(PLAN, "rollback", "--json")
    assert too_late.code == 4 and too_late.json()["refused"] is True
    assert too_late.json()["status"] == "refused"
    assert "decommissioned" in too_late.json()["reason"] and "decommissioned" in too_late.stderr
    assert environments(clients) == cut_env


def test_the_readmes_sample_tables_line_runs_as_written(emulator: str) -> None:
    """README's line that makes sample Stripe tables on the emulator, run as a user pastes
    it: no AWS credentials, no ~/.aws. It raised NoCredentialsError (the clients were made
    without the emulator's credentials)."""
    readme = (ROOT / "README.md").read_text()
    (line,) = re.findall(r"`(\.venv/bin/python -c \"[^`]*create_stripe_tables[^`]*)`", readme)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=emulator, HOME="/nonexistent-home", PYTHONPATH=str(ROOT))
    argv = shlex.split(line.replace("$AWS_ENDPOINT_URL", emulator))
    argv[0] = sys.executable  # .venv/bin/python, whichever interpreter runs the suite
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    clients = Clients(AwsSettings(endpoint_url=emulator, emulator_credentials=True))
    assert {OLD + n for n in NAMES} <= set(clients.dynamodb.list_tables()["TableNames"])
