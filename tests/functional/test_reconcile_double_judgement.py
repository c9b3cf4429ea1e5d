"""A target key judged by both the source pass and the target pass (its source deleted in
between) counts once, in `dualwrite reconcile` (reconciler.run.RouteFindings) and in the
state machine (reconciler.sfn_merge.found_by_route: the unit records list their judgements by
key; it summed every unit's tally, counting the key twice)."""

from __future__ import annotations

from typing import Any

import pytest

import reconciler.passes as passes
from dualwrite.aws.clients import Clients
from reconciler.job import run_reconcile
from reconciler.sfn_steps import Steps
from tests.functional.test_reconcile_state_machine_steps import execution, run_steps
from tests.functional.test_reconcile_support import (
    TARGET,
    build_core,
    by_route,
    counts,
    server_key,
)


def _race(monkeypatch: pytest.MonkeyPatch, clients: Clients, data: Any) -> None:
    """Target lacks server k (missing). Just before the exact phase scans the target (after
    the source pass judged k missing), k's source is deleted and a target item appears."""
    ddb = clients.dynamodb
    server = data.servers[0]
    sid = server["id"]["S"]
    ddb.delete_item(TableName=TARGET, Key=server_key(sid))
    orig = passes.scan_pages
    calls = [0]

    def scan(client: Any, table: str, **kw: Any) -> Any:
        if table == TARGET:
            calls[0] += 1
            if calls[0] == 2:  # digest phase scanned it once; this is the exact phase
                ddb.delete_item(TableName="ServersTable", Key={"id": {"S": sid}})
                ddb.put_item(TableName=TARGET, Item={**server_key(sid), "Type": {"S": "Server"}})
        return orig(client, table, **kw)

    monkeypatch.setattr(passes, "scan_pages", scan)


def test_cli_counts_the_key_once(moto_clients: Clients, monkeypatch: pytest.MonkeyPatch) -> None:
    migration, store, data = build_core(moto_clients, servers=3, memberships=6)
    _race(monkeypatch, moto_clients, data)
    cli = by_route(
        run_reconcile(
            migration,
            moto_clients,
            store,
            routes="servers",
            settle_s=0,
            publish_metrics=False,
            segments=1,
            workers=1,
        ).to_json()
    )
    assert sum(counts(cli["servers"])) == 1


def test_state_machine_counts_the_key_once(
    moto_clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    migration, store, data = build_core(moto_clients, servers=3, memberships=6)
    _race(monkeypatch, moto_clients, data)
    steps = Steps.of(migration, moto_clients, store)
    out = run_steps(steps, execution(moto_clients, "one"), route="servers", total_segments=1)
    result = out["results"][0]
    assert sum(counts(result)) == 1, counts(result)
