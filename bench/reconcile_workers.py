"""Reconcile of one route with N parallel workers, as the reconcile state machine runs it,
against the raw parallel Scan of the same engine with as many workers.

    .venv/bin/python -m bench.reconcile_workers [--items 20000] [--workers 1,2,4]
                                                [--engine dynalite] [--repeat 2] [--json]

One route (servers): ServersTable with N items and a CoreTable holding exactly what the
mapping makes of them. Per worker count W, with the tables cut into W scan segments each
(2W units: W source, W target, as reconciler.units.plan_units makes them):
- raw scan: W worker processes scan the 2W (table, segment) pairs, counting items;
- state machine: W worker processes each run whole units of the digest phase exactly as a
  Distributed Map child does (reconciler.passes.Checker with digest=True, the code
  reconciler.sfn_steps.Steps.run_unit calls), then the parent adds their digests up
  (reconciler.sfn_merge.combine, the Combine step) and must find no open bucket;
- one process: `run_reconcile(routes="servers", segments=W, workers=W)`, the CLI's engine
  (threads in one interpreter), for comparison.
Processes, not threads, because each Distributed Map child is its own Lambda: threads share
one interpreter's lock. Worker processes are started (and their clients made) before the
clock starts, as warm Lambdas are. Step Functions' and Lambda's own latencies (a child
execution starting, an invocation) are not in these figures: they add about a second per
child, not per item. Runs are interleaved --repeat times; the best of each counts. The
machine's cores bound what W can gain (both columns alike): see `cores` in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from bench.engines import ENGINES
from bench.reconcile import MIGRATION, TARGET, make_tables
from dualwrite import collector
from dualwrite import seed as seeding
from dualwrite.aws import tables
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.aws.dynamo import scan_pages
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore
from dualwrite.mapping import build_mapping
from reconciler.digest import DEFAULT_BUCKETS
from reconciler.expect import expected_items
from reconciler.job import run_reconcile
from reconciler.passes import DEFAULT_PAGE_SIZE, Checker
from reconciler.sfn_merge import DIGEST, UnitRecord, combine
from reconciler.spec import RouteSpec, resolve_routes
from reconciler.units import Unit, UnitState, plan_units

ROUTE = "servers"


def migration_of_one_route() -> Migration:
    data = {**MIGRATION, "routes": [r for r in MIGRATION["routes"] if r["name"] == ROUTE]}
    return parse_migration(data)


def clients_for(endpoint: str) -> Clients:
    settings = AwsSettings(endpoint_url=endpoint, region="us-east-1", emulator_credentials=True)
    return Clients(settings).shared()


# --- worker processes (module level: they are pickled by name) ---------------------------
_worker: dict[str, Any] = {}


def _init(endpoint: str) -> None:
    clients = clients_for(endpoint)
    (spec,) = resolve_routes(migration_of_one_route(), clients, [ROUTE])
    _worker.update(clients=clients, spec=spec)


def _ready(_: int) -> int:
    return os.getpid()


def _scan(job: tuple[str, int, int]) -> int:
    table, segment, total = job
    n = 0
    with collector.bulk():
        for page in scan_pages(
            _worker["clients"].dynamodb,
            table,
            segment=segment,
            total_segments=total,
            limit=DEFAULT_PAGE_SIZE,
        ):
            n += len(page.items)
    return n


def _digest_unit(unit: Unit) -> dict[str, Any]:
    spec: RouteSpec = _worker["spec"]
    checker = Checker(_worker["clients"], {spec.name: spec}, digest=True)
    state = UnitState()
    with collector.bulk():
        outcome = checker.run(unit, state)
    return UnitRecord(DIGEST, unit.uid, state, outcome.digests).to_json()


# --- measurements --------------------------------------------------------------------------
def warm_pool(endpoint: str, workers: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(endpoint,))
    pids = set(pool.map(_ready, range(workers * 4)))
    while len(pids) < workers:  # every process started and initialised before timing
        pids |= set(pool.map(_ready, range(workers * 4)))
    return pool


def raw_scan(pool: ProcessPoolExecutor, workers: int) -> tuple[int, float]:
    jobs = [(t, s, workers) for t in (seeding.SERVERS_TABLE, TARGET) for s in range(workers)]
    started = time.perf_counter()
    items = sum(pool.map(_scan, jobs))
    return items, time.perf_counter() - started


def state_machine_digest(
    pool: ProcessPoolExecutor, spec: RouteSpec, workers: int
) -> tuple[int, float]:
    units = plan_units([spec], workers)
    started = time.perf_counter()
    records = [UnitRecord.from_json(r) for r in pool.map(_digest_unit, units)]
    combined = combine([spec.name], records, DEFAULT_BUCKETS)
    seconds = time.perf_counter() - started
    if combined.open:
        raise SystemExit(f"the digests do not cancel out: {combined.open}")
    tally = combined.tallies[spec.name]
    return tally.source_items + tally.target_items, seconds


@dataclass
class Row:
    workers: int
    items: int
    scan_items_per_s: float
    state_machine_items_per_s: float
    ratio: float
    one_process_items_per_s: float
    one_process_ratio: float


def measure(engine: str, items: int, counts: list[int], repeat: int) -> list[Row]:
    migration = migration_of_one_route()
    rows: list[Row] = []
    with ENGINES[engine]() as endpoint:
        clients = clients_for(endpoint)
        make_tables(clients, parse_migration(MIGRATION))
        print(f"[{engine}] filling {items} servers ...", file=sys.stderr, flush=True)
        data = seeding.generate(items, 0, seed=11)
        seeding.write_items(clients, seeding.SERVERS_TABLE, data.servers, workers=4)
        desc = tables.describe(clients.dynamodb, seeding.SERVERS_TABLE)
        assert desc is not None
        mapping = build_mapping(migration.route(ROUTE).mapping, tables.key_schema_of(desc))
        seeding.write_items(clients, TARGET, expected_items(mapping, data.servers), workers=4)
        (spec,) = resolve_routes(migration, clients, [ROUTE])
        store = ControlStore(clients.dynamodb, migration.control_table)
        total = 2 * items
        for w in counts:
            pool = warm_pool(endpoint, w)
            try:
                scans, machines, singles = [], [], []
                for attempt in range(repeat):
                    print(f"[{engine}] W={w} run {attempt + 1}/{repeat}", file=sys.stderr)
                    seen, seconds = raw_scan(pool, w)
                    assert seen == total, (seen, total)
                    scans.append(seconds)
                    verified, seconds = state_machine_digest(pool, spec, w)
                    assert verified == total, (verified, total)
                    machines.append(seconds)
                    started = time.perf_counter()
                    result = run_reconcile(
                        migration,
                        clients,
                        store,
                        routes=ROUTE,
                        segments=w,
                        workers=w,
                        publish_metrics=False,
                    )
                    singles.append(time.perf_counter() - started)
                    assert result.parity, result
            finally:
                pool.shutdown()
            scan_rate, machine_rate = total / min(scans), total / min(machines)
            single_rate = total / min(singles)
            rows.append(
                Row(
                    workers=w,
                    items=total,
                    scan_items_per_s=round(scan_rate, 1),
                    state_machine_items_per_s=round(machine_rate, 1),
                    ratio=round(machine_rate / scan_rate, 3),
                    one_process_items_per_s=round(single_rate, 1),
                    one_process_ratio=round(single_rate / scan_rate, 3),
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile_workers", description=__doc__)
    parser.add_argument("--items", type=int, default=20_000, help="servers (source items)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma list")
    parser.add_argument("--engine", default="dynalite", choices=sorted(ENGINES))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    rows = measure(args.engine, args.items, counts, args.repeat)
    cores = os.cpu_count() or 1
    if args.json:
        print(
            json.dumps({"engine": args.engine, "cores": cores, "rows": [asdict(r) for r in rows]})
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"reconcile of one route ({args.items} source + {args.items} target items, "
        f"{args.engine}, {cores} cores): W workers vs raw parallel Scan with W workers",
        title_justify="left",
    )
    for col in (
        "W",
        "raw scan items/s",
        "state machine items/s",
        "ratio",
        "one process (CLI) items/s",
        "ratio",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r.workers),
            f"{r.scan_items_per_s:,.0f}",
            f"{r.state_machine_items_per_s:,.0f}",
            f"{r.ratio:.2f}",
            f"{r.one_process_items_per_s:,.0f}",
            f"{r.one_process_ratio:.2f}",
        )
    Console(width=max(120, Console().width)).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
