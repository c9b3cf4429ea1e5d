"""Reconcile throughput and memory: items verified per second against the raw parallel Scan
rate of the same engine, and peak memory (tracemalloc) as the tables grow.

    .venv/bin/python -m bench.reconcile [--items 10000,100000] [--engines moto,dynalite]
                                        [--segments 4] [--moto-max-items 20000]
                                        [--repeat 2] [--json]

Per engine and item count: ServersTable + UserMembershipTable with N generated source items
(a quarter servers, the rest memberships, ~3 per user) and a CoreTable filled with exactly
what the mappings make of them (so the check finds parity), all created directly (dynalite
has no streams; the reconciler needs none). Then, with the same segments, page size (Scan
Limit 1,000) and one shared boto3 client:
- raw scan: a plain parallel Scan of both sources and the target (S segments each, one
  thread per table segment), counting items and nothing else, on the same clients as the
  reconciler (items parsed by dualwrite.aws.codec) and under the same garbage collector
  policy (dualwrite.collector.bulk): the ratio's baseline. On dynalite it keeps the engine's
  one core busy: it is the engine's scan rate, not the client's;
- raw scan (plain boto3): the same with botocore parsing the items and the collector at its
  defaults, as any boto3 script would;
- reconcile: reconciler.job.run_reconcile over both routes (source pass with the mapping,
  derived Users from the pages and 100-key consistent BatchGetItem on the target; target
  pass with source look-ups), timed without and then measured with tracemalloc for its
  peak. "verified" counts the source items plus the target items judged.
Raw scan and reconcile runs are interleaved --repeat times and the best of each counts.
moto's Scan sorts the whole table on every call (DESIGN.md section 5), so counts above
--moto-max-items run on dynalite only; dynalite is installed into .bench/node_modules with
npm on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from bench.engines import ENGINES
from dualwrite import collector
from dualwrite import seed as seeding
from dualwrite.aws import tables
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.aws.dynamo import scan_pages
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore, control_table_definition
from dualwrite.mapping import build_mapping
from reconciler.expect import expected_items
from reconciler.job import ReconcileResult, run_reconcile
from reconciler.passes import DEFAULT_PAGE_SIZE

TARGET = "CoreTable"
CONTROL = "bench-reconcile-control"

MIGRATION: dict[str, Any] = {
    "control_table": CONTROL,
    "metrics_namespace": "DualWriteBench",
    "routes": [
        {"name": "servers", "source": "ServersTable", "target": TARGET, "mapping": "servers"},
        {
            "name": "memberships",
            "source": "UserMembershipTable",
            "target": TARGET,
            "mapping": "memberships",
        },
    ],
    "targets": {TARGET: {"key": {"PK": "S", "SK": "S"}}},
}


# --- set-up --------------------------------------------------------------------------------
def make_tables(clients: Clients, migration: Migration) -> None:
    ddb = clients.dynamodb
    target = tables.declared_definition(TARGET, migration.targets[TARGET])
    for definition in (
        seeding.SERVERS_DEFINITION,
        seeding.MEMBERSHIPS_DEFINITION,
        target,
        control_table_definition(CONTROL),
    ):
        tables.create_table(ddb, definition)
        tables.wait_active(ddb, definition["TableName"])


def fill(clients: Clients, migration: Migration, items: int) -> tuple[int, int]:
    """N source items and the target the mappings make of them. Returns (source, target)."""
    servers = max(1, items // 4)
    data = seeding.generate(servers, items - servers, seed=11)
    seeding.write_items(clients, seeding.SERVERS_TABLE, data.servers, workers=4)
    seeding.write_items(clients, seeding.MEMBERSHIPS_TABLE, data.memberships, workers=4)
    written = 0
    for route, source_items in (("servers", data.servers), ("memberships", data.memberships)):
        r = migration.route(route)
        desc = tables.describe(clients.dynamodb, r.source)
        assert desc is not None
        made = expected_items(build_mapping(r.mapping, tables.key_schema_of(desc)), source_items)
        written += seeding.write_items(clients, TARGET, made, workers=4)
    return len(data.servers) + len(data.memberships), written


# --- measurements ------------------------------------------------------------------------
def raw_scan(
    clients: Clients, segments: int, page_size: int, *, bulk: bool = True
) -> tuple[int, float]:
    """A plain parallel Scan of both sources and the target: (items, seconds)."""
    jobs = [
        (table, s)
        for table in (seeding.SERVERS_TABLE, seeding.MEMBERSHIPS_TABLE, TARGET)
        for s in range(segments)
    ]

    def scan(job: tuple[str, int]) -> int:
        table, segment = job
        n = 0
        for page in scan_pages(
            clients.dynamodb, table, segment=segment, total_segments=segments, limit=page_size
        ):
            n += len(page.items)
        return n

    started = time.perf_counter()
    with (
        collector.bulk() if bulk else contextlib.nullcontext(),
        ThreadPoolExecutor(max_workers=len(jobs)) as pool,
    ):
        items = sum(pool.map(scan, jobs))
    return items, time.perf_counter() - started


def reconcile(
    clients: Clients, store: ControlStore, migration: Migration, segments: int, page_size: int
) -> tuple[ReconcileResult, float]:
    started = time.perf_counter()
    result = run_reconcile(
        migration,
        clients,
        store,
        segments=segments,
        page_size=page_size,
        publish_metrics=False,
    )
    return result, time.perf_counter() - started


@dataclass
class Row:
    engine: str
    items: int
    target_items: int
    scan_items_per_s: float
    plain_scan_items_per_s: float
    verified_items_per_s: float
    ratio: float
    ratio_plain: float
    reconcile_s: float
    peak_mib: float
    parity: bool
    requests: dict[str, int]


def measure(engine: str, items: int, segments: int, page_size: int, repeat: int) -> Row:
    migration = parse_migration(MIGRATION)
    with ENGINES[engine]() as endpoint:
        base = Clients(
            AwsSettings(endpoint_url=endpoint, region="us-east-1", emulator_credentials=True)
        )
        clients = base.shared()
        plain = Clients(
            AwsSettings(
                endpoint_url=endpoint,
                region="us-east-1",
                emulator_credentials=True,
                fast_codec=False,
            )
        ).shared()
        make_tables(clients, migration)
        print(f"[{engine} {items}] filling ...", file=sys.stderr, flush=True)
        source_n, target_n = fill(clients, migration, items)
        store = ControlStore(clients.dynamodb, CONTROL)
        # interleaved repeats, best of each: the machine is shared, noise only slows things
        scan_times: list[float] = []
        plain_times: list[float] = []
        times: list[float] = []
        result: ReconcileResult | None = None
        verified = 0
        for attempt in range(repeat):
            print(f"[{engine} {items}] raw scan {attempt + 1}/{repeat} ...", file=sys.stderr)
            scanned, scan_s = raw_scan(clients, segments, page_size)
            if scanned != source_n + target_n:
                raise SystemExit(f"raw scan saw {scanned} items, expected {source_n + target_n}")
            scan_times.append(scan_s)
            print(f"[{engine} {items}] raw scan, plain boto3 ...", file=sys.stderr)
            plain_times.append(raw_scan(plain, segments, page_size, bulk=False)[1])
            print(f"[{engine} {items}] reconcile {attempt + 1}/{repeat} ...", file=sys.stderr)
            result, seconds = reconcile(clients, store, migration, segments, page_size)
            verified = sum(r.source_items + r.target_items for r in result.routes)
            if verified != source_n + target_n or not result.parity:
                raise SystemExit(f"reconcile verified {verified} items, parity {result.parity}")
            times.append(seconds)
        scan_s, plain_s, seconds = min(scan_times), min(plain_times), min(times)
        print(f"[{engine} {items}] reconcile under tracemalloc ...", file=sys.stderr)
        gc.collect()
        tracemalloc.start()
        reconcile(clients, store, migration, segments, page_size)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    scan_rate = (source_n + target_n) / scan_s
    plain_rate = (source_n + target_n) / plain_s
    rate = verified / seconds
    assert result is not None  # repeat >= 1
    return Row(
        engine=engine,
        items=source_n,
        target_items=target_n,
        scan_items_per_s=round(scan_rate, 1),
        plain_scan_items_per_s=round(plain_rate, 1),
        verified_items_per_s=round(rate, 1),
        ratio=round(rate / scan_rate, 3),
        ratio_plain=round(rate / plain_rate, 3),
        reconcile_s=round(seconds, 2),
        peak_mib=round(peak / 2**20, 2),
        parity=result.parity,
        requests=dict(result.requests),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__)
    parser.add_argument("--items", default="10000,100000", help="source item counts, comma list")
    parser.add_argument("--engines", default="moto,dynalite")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    parser.add_argument(
        "--moto-max-items",
        type=int,
        default=20_000,
        help="larger counts run on dynalite only (moto's Scan sorts the table on every call)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed runs each; the best counts")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.items.split(",") if x.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(unknown)}")
    rows: list[Row] = []
    skipped: list[str] = []
    for engine in engines:
        for n in counts:
            if engine == "moto" and n > args.moto_max_items:
                skipped.append(f"moto at {n} items (over --moto-max-items {args.moto_max_items})")
                continue
            rows.append(measure(engine, n, args.segments, args.page_size, args.repeat))
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "skipped": skipped}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"reconcile vs raw parallel Scan ({args.segments} segments, "
        f"Scan Limit {args.page_size})",
        title_justify="left",
    )
    for col in (
        "engine",
        "source items",
        "target items",
        "raw scan items/s",
        "verified items/s",
        "ratio",
        "raw scan (plain boto3) items/s",
        "ratio to it",
        "reconcile s",
        "peak MiB",
    ):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for r in rows:
        table.add_row(
            r.engine,
            str(r.items),
            str(r.target_items),
            f"{r.scan_items_per_s:,.0f}",
            f"{r.verified_items_per_s:,.0f}",
            f"{r.ratio:.2f}",
            f"{r.plain_scan_items_per_s:,.0f}",
            f"{r.ratio_plain:.2f}",
            f"{r.reconcile_s:.1f}",
            f"{r.peak_mib:.1f}",
        )
    console = Console(width=max(130, Console().width))
    console.print(table)
    for note in skipped:
        console.print(f"skipped: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
