"""A scheduled run (reconciler.scheduled) reads its units over many slices (up to
MAX_RUN_AGE_S, 6 h) and records its result when it ends. It used to overwrite whatever
`dualwrite reconcile` recorded in the meantime: a drift the CLI found after the scheduled
run had read that item was replaced by a "fresh" parity record that status showed and the
cutover gate accepted. A result now never replaces one whose reads began later."""

from __future__ import annotations

from dualwrite.aws.clients import Clients
from reconciler.job import run_reconcile
from reconciler.scheduled import run_slice
from tests.functional.test_reconcile_support import TARGET, build_core


def test_an_older_scheduled_run_does_not_overwrite_a_newer_drift(moto_clients: Clients) -> None:
    migration, store, _ = build_core(moto_clients, servers=6, memberships=2)
    kw = dict(routes=["servers"], segments=1, page_size=3, settle_s=0)
    # slice 1: every unit reads its first page, then pauses (the Lambda's time budget)
    first = run_slice(migration, moto_clients, store, should_stop=lambda: True, **kw)
    assert not first.complete
    # a server the paused target unit has already folded in goes missing from the target
    page = moto_clients.dynamodb.scan(TableName=TARGET, Limit=3)["Items"]
    gone = next(i for i in page if i["PK"]["S"].startswith("SERVER#"))
    moto_clients.dynamodb.delete_item(TableName=TARGET, Key={"PK": gone["PK"], "SK": gone["SK"]})
    # the operator checks: drift, recorded
    cli = run_reconcile(
        migration,
        moto_clients,
        store,
        routes=["servers"],
        settle_s=0,
        publish_metrics=False,
        segments=1,
    )
    assert cli.route("servers").missing == 1 and not cli.parity
    assert store.last_reconcile("servers").parity is False
    # the scheduled run started before the drift now finishes
    while True:
        s = run_slice(migration, moto_clients, store, should_stop=lambda: False, **kw)
        if s.complete:
            break
    saved = store.last_reconcile("servers")
    assert saved is not None
    # the target still lacks the server: the record the gate and status read must not say parity
    assert saved.parity is False, (
        saved.mode,
        saved.parity,
        saved.missing,
        saved.started_at,
        saved.at,
    )
