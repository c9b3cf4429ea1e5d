"""The demo flow (grows as components land)."""

from __future__ import annotations

from pathlib import Path

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.cli.context import AppContext
from dualwrite.config import load_migration
from dualwrite.emulator import Emulator

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "coretable.yaml"


def run_demo(app: AppContext, *, servers: int, memberships: int, port: int) -> int:
    migration = load_migration(MIGRATION)
    with Emulator(port=port) as emulator:
        app.out.rule(f"embedded emulator on {emulator.endpoint}")
        clients = Clients(
            AwsSettings(
                endpoint_url=emulator.endpoint, region="us-east-1", emulator_credentials=True
            )
        )
        app.out.rule("1. seed legacy data")
        data = seeding.generate(servers, memberships, 1)
        seeding.ensure_tables(clients)
        seeding.write_items(clients, seeding.SERVERS_TABLE, data.servers)
        seeding.write_items(clients, seeding.MEMBERSHIPS_TABLE, data.memberships)
        app.out.print(f"{len(data.servers)} servers, {len(data.memberships)} memberships")
        app.out.rule("2. prepare")
        plan = preparing.analyze(migration, clients)
        for action in preparing.apply(migration, clients, plan, say=app.say):
            app.out.print(f"  {action.table}: {action.action} ({action.detail})")
    return 0
