"""The scheduled reconciler keeps a failed slice's unit states (reconciler.scheduled.run_slice
saves the run in `finally`), and reconciler.units.run_units merges only the outcomes of units
that succeeded. A unit that failed after some pages had its UnitState (last_key, tallies)
advanced in place past pages whose differences (exact phase) were never merged, so the next
slice resumed after them: the difference was never counted and parity was recorded. A unit
now runs on a copy of its state, kept only with its merged outcome."""

from __future__ import annotations

from typing import Any

import pytest

import reconciler.passes as passes
from dualwrite.aws.clients import Clients
from dualwrite.errors import ThrottledError
from reconciler.scheduled import run_slice
from tests.functional.test_reconcile_support import TARGET, build_core, server_key


def _first_page_server(clients: Clients) -> str:
    page = clients.dynamodb.scan(TableName="ServersTable", Limit=2, ConsistentRead=True)
    return page["Items"][0]["id"]["S"]


def _fail_second_page_of_exact_source_scan(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    orig = passes.scan_pages
    calls = [0]

    def scan(client: Any, table: str, **kw: Any) -> Any:
        gen = orig(client, table, **kw)
        if table != "ServersTable":
            return gen
        calls[0] += 1
        if calls[0] != 2:  # 1: digest phase; 2: the exact phase's source unit
            return gen

        def failing() -> Any:
            yield next(gen)
            raise ThrottledError("injected: Scan throttled past every retry", "Throttling", "Scan")

        return failing()

    monkeypatch.setattr(passes, "scan_pages", scan)
    return calls


def test_a_failed_exact_unit_does_not_lose_its_differences(
    moto_clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    migration, store, _data = build_core(moto_clients, servers=6, memberships=4)
    sid = _first_page_server(moto_clients)
    moto_clients.dynamodb.delete_item(TableName=TARGET, Key=server_key(sid))
    calls = _fail_second_page_of_exact_source_scan(monkeypatch)

    kw = dict(should_stop=lambda: False, routes=["servers"], segments=1, page_size=2, settle_s=0)
    with pytest.raises(ThrottledError):
        run_slice(migration, moto_clients, store, **kw)  # the throttling outlives the slice
    assert calls[0] == 2
    result = run_slice(migration, moto_clients, store, **kw).to_json()  # the next schedule
    assert result["complete"]
    (servers,) = result["routes"]
    saved = store.last_reconcile("servers")
    assert saved is not None
    # the target lacks SERVER#<sid>: this must be drift, never parity
    assert (servers["missing"], servers["parity"], saved.parity) == (1, False, False), servers
    # and each source item counted once
    assert servers["source_items"] == 6
