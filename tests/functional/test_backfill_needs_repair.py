"""A backfill that outlived the stream's retention marks its route needs_repair and tells the
user to run `dualwrite reconcile --repair` (README, Troubleshooting); the cutover gate
refuses the route until then. Running it and reaching parity used to change nothing: status
said needs_repair forever, so nobody could tell a route whose repair pass ran from one whose
did not. A repair begun after the backfill completed, at parity, now clears it."""

from __future__ import annotations

import time

from backfill.job import run_backfill
from dualwrite import seed as seeding
from dualwrite.control import ControlStore
from dualwrite.status import gather
from reconciler.job import run_reconcile
from tests.functional.test_backfill_job import counting, stopper  # noqa: F401
from tests.functional.test_backfill_support import CountingClients, coretable, prepare, seed


def test_a_repair_pass_at_parity_clears_needs_repair(counting: CountingClients) -> None:  # noqa: F811
    data = seeding.generate(12, 0, seed=3)
    seed(counting, data.servers, [])
    migration = coretable()
    prepare(counting, migration)
    clock = [time.time() + 60]
    store = ControlStore(counting.dynamodb, migration.control_table, clock=lambda: clock[0])
    stop, on_progress = stopper()
    run_backfill(
        migration,
        counting,
        store,
        routes=["servers"],
        scan_limit=5,
        on_progress=on_progress,
        stop=stop,
        warn=lambda _m: None,
    )
    clock[0] += 25 * 3600
    run_backfill(migration, counting, store, routes=["servers"], warn=lambda _m: None)
    assert store.phase("servers").needs_repair is True

    result = run_reconcile(
        migration,
        counting,
        store,
        routes=["servers"],
        repair=True,
        settle_s=0,
        publish_metrics=False,
    )
    assert result.parity  # the repair pass the warning asked for, at parity

    assert store.phase("servers").needs_repair is False
    status = {r["route"]: r for r in gather(migration, counting, store).to_json()["routes"]}
    assert status["servers"]["phase_detail"]["needs_repair"] is False, status["servers"][
        "phase_detail"
    ]
