"""Backfill throughput: `dualwrite backfill`'s job against a minimal reference copy and the
migration plan's naive serial copy, on moto (the embedded emulator) and on dynalite.

    .venv/bin/python -m bench.backfill [--items N] [--dynalite-items N] [--segments 1,2,4,8]
                                       [--engines moto,dynalite] [--repeat R]

Per engine, one source table (the `servers` route's ServersTable, generated items with every
attribute type) and, per measurement, a fresh target table:
- backfill: backfill.job.run_backfill (the job the CLI runs: checks, phases, checkpoints,
  coalescing, capacity accounting, event source mappings), S segments on S workers;
- reference: the same Scan (Limit 1,000) + the same mapping + 25-item BatchWriteItem
  (UnprocessedItems retried) on S threads, nothing else;
- naive: the plan's serial copy: boto3 resource Table.scan() page by page, the mapping done
  on Python values, Table.batch_writer();
- write ceiling: the target items, already made, written with 25-item BatchWriteItem on 8
  threads and nothing else: what the engine itself can take;
- scan ceiling: the source scanned (Limit 1,000) on 1 and on 4 segments, counting items,
  nothing else; the quicker counts (moto walks the whole table for every segment).
Both emulators serve one request at a time (moto under the GIL, dynalite on node's one
thread), so no copy can beat 1 / (1/scan + 1/write) items/s: the "engine ceiling" column.
Both timed copies create their per-thread boto3 clients inside the timing. Every copy is
checked (target item count) before its figure is printed. dynalite (npm) has no streams, so
there its source has none and the job runs with require_stream=False; it is installed into
.bench/node_modules on first use.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from backfill.job import run_backfill
from bench.engines import dynalite_engine, moto_engine
from dualwrite import seed as seeding
from dualwrite.aws import tables
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.aws.dynamo import scan_pages
from dualwrite.config import Migration, Target, parse_migration
from dualwrite.control import ControlStore, control_table_definition
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.wire import Item

SOURCE = seeding.SERVERS_TABLE
CONTROL = "bench-control"
SERVERS_KEY = KeySchema((("id", "S"),))


# --- setup -----------------------------------------------------------------------------
def clients_for(endpoint: str) -> Clients:
    settings = AwsSettings(endpoint_url=endpoint, region="us-east-1", emulator_credentials=True)
    return Clients(settings)


def create(clients: Clients, definition: dict[str, Any]) -> None:
    tables.create_table(clients.dynamodb, definition)
    tables.wait_active(clients.dynamodb, definition["TableName"])


def target_definition(name: str) -> dict[str, Any]:
    return tables.declared_definition(name, Target(key={"PK": "S", "SK": "S"}))


def write_all(ddb: Any, target: str, batch: list[dict[str, Any]]) -> None:
    """One BatchWriteItem of up to 25 requests, its UnprocessedItems sent again until none."""
    pending = batch
    while pending:
        response = ddb.batch_write_item(RequestItems={target: pending})
        pending = response.get("UnprocessedItems", {}).get(target, [])


def setup(clients: Clients, items: list[Item], *, streams: bool) -> None:
    create(clients, dict(seeding.SERVERS_DEFINITION))
    seeding.write_items(clients, SOURCE, items, workers=4)
    create(clients, control_table_definition(CONTROL))
    if streams:
        tables.enable_stream(clients.dynamodb, SOURCE)
        tables.wait_active(clients.dynamodb, SOURCE)


def count(clients: Clients, table: str) -> int:
    ddb: Any = clients.dynamodb
    total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        response = ddb.scan(**kwargs)
        total += int(response["Count"])
        if "LastEvaluatedKey" not in response:
            return total
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- the three copies ------------------------------------------------------------------
def backfill_copy(
    endpoint: str, target: str, segments: int, route: str, streams: bool
) -> tuple[float, int, int]:
    """run_backfill on fresh Clients; returns (seconds, BatchWriteItem requests, the fewest
    requests possible)."""
    migration: Migration = parse_migration(
        {
            "control_table": CONTROL,
            "routes": [{"name": route, "source": SOURCE, "target": target, "mapping": "servers"}],
            "targets": {target: {"key": {"PK": "S", "SK": "S"}}},
        }
    )
    start = time.perf_counter()
    clients = clients_for(endpoint)
    store = ControlStore(clients.dynamodb, CONTROL)
    result = run_backfill(
        migration,
        clients,
        store,
        segments=segments,
        workers=segments,
        require_stream=streams,
        warn=lambda m: print(f"warning: {m}", file=sys.stderr),
    )
    elapsed = time.perf_counter() - start
    (r,) = result.routes
    assert r.complete, r
    # the fewest BatchWriteItem calls possible: full batches, one partial batch per segment
    fewest = sum(math.ceil(cp.items_written / 25) for cp in store.segments(route))
    return elapsed, r.write_requests, fewest


def reference_copy(endpoint: str, target: str, segments: int) -> float:
    """Scan + transform + 25-item BatchWriteItem on S threads, with no other work."""
    mapping = build_mapping("servers", SERVERS_KEY)
    start = time.perf_counter()
    clients = clients_for(endpoint)

    def copy(segment: int) -> None:
        ddb: Any = clients.dynamodb
        kwargs: dict[str, Any] = {"TableName": SOURCE, "Limit": 1000}
        if segments > 1:
            kwargs.update(Segment=segment, TotalSegments=segments)
        while True:
            page = ddb.scan(**kwargs)
            puts = [{"PutRequest": {"Item": mapping.transform(i)}} for i in page["Items"]]
            for at in range(0, len(puts), 25):
                write_all(ddb, target, puts[at : at + 25])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with ThreadPoolExecutor(max_workers=segments) as pool:
        list(pool.map(copy, range(segments)))
    return time.perf_counter() - start


def write_ceiling(endpoint: str, target: str, items: list[Item], threads: int = 8) -> float:
    """Seconds to write the already-made target items, 25 per BatchWriteItem, on `threads`."""
    mapping = build_mapping("servers", SERVERS_KEY)
    made = [{"PutRequest": {"Item": mapping.transform(i)}} for i in items]
    batches = [made[at : at + 25] for at in range(0, len(made), 25)]
    clients = clients_for(endpoint)
    start = time.perf_counter()

    def write(batch: list[dict[str, Any]]) -> None:
        write_all(clients.dynamodb, target, batch)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(write, batches))
    return time.perf_counter() - start


def scan_ceiling(endpoint: str, segments: int = 4) -> float:
    """Seconds to scan the source on `segments` threads, counting items and nothing else."""
    clients = clients_for(endpoint)
    start = time.perf_counter()

    def scan(segment: int) -> int:
        pages = scan_pages(
            clients.dynamodb, SOURCE, segment=segment, total_segments=segments, limit=1000
        )
        return sum(len(page.items) for page in pages)

    with ThreadPoolExecutor(max_workers=segments) as pool:
        list(pool.map(scan, range(segments)))
    return time.perf_counter() - start


def naive_copy(endpoint: str, target: str) -> float:
    """The migration plan's copy: resource scan, page by page, batch_writer; one thread."""
    import boto3

    start = time.perf_counter()
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    source: Any = resource.Table(SOURCE)
    dest: Any = resource.Table(target)
    kwargs: dict[str, Any] = {}
    with dest.batch_writer() as writer:
        while True:
            page = source.scan(**kwargs)
            for item in page["Items"]:
                out = {"PK": f"SERVER#{item['id']}", "SK": "METADATA", "Type": "Server"}
                out.update({k: v for k, v in item.items() if k != "id"})
                writer.put_item(Item=out)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return time.perf_counter() - start


# --- the run ---------------------------------------------------------------------------
@dataclass
class Row:
    engine: str
    segments: int
    backfill: float
    reference: float
    naive: float
    ceiling: float
    requests_per_25: float
    requests_vs_fewest: float


def measure(
    engine: str,
    endpoint: str,
    items: list[Item],
    segment_counts: list[int],
    say: Callable[[str], None],
    repeat: int = 1,
) -> list[Row]:
    streams = engine == "moto"
    clients = clients_for(endpoint)
    say(f"{engine}: writing {len(items)} source items")
    setup(clients, items, streams=streams)
    n = len(items)
    runs = [0]

    def fresh_target() -> str:
        runs[0] += 1
        name = f"BenchCore{runs[0]}"
        create(clients, target_definition(name))
        return name

    def done(name: str) -> None:
        copied = count(clients, name)
        if copied != n:
            raise SystemExit(f"{engine}: {name} has {copied} items, expected {n}")
        clients.dynamodb.delete_table(TableName=name)

    say(f"{engine}: naive serial copy")
    target = fresh_target()
    naive = n / naive_copy(endpoint, target)
    done(target)
    write_s, scan_s = [], []
    for rep in range(repeat):  # best of each, as for the copies
        say(f"{engine}: engine ceiling, writes and scans ({rep + 1}/{repeat})")
        target = fresh_target()
        write_s.append(write_ceiling(endpoint, target, items))
        done(target)
        scan_s += [scan_ceiling(endpoint, 1), scan_ceiling(endpoint, 4)]
    ceiling = 1 / (min(scan_s) / n + min(write_s) / n)
    rows = []
    for s in segment_counts:
        reference = backfill = requests_per_25 = requests_vs_fewest = 0.0
        for rep in range(repeat):  # interleaved, best of each: the machine may be shared
            say(f"{engine}: {s} segment(s): reference copy ({rep + 1}/{repeat})")
            target = fresh_target()
            reference = max(reference, n / reference_copy(endpoint, target, s))
            done(target)
            say(f"{engine}: {s} segment(s): backfill job ({rep + 1}/{repeat})")
            target = fresh_target()
            seconds, requests, fewest = backfill_copy(
                endpoint, target, s, f"bench{runs[0]}", streams
            )
            done(target)
            backfill = max(backfill, n / seconds)
            requests_per_25 = requests * 25 / n
            requests_vs_fewest = requests / fewest
        rows.append(
            Row(engine, s, backfill, reference, naive, ceiling, requests_per_25, requests_vs_fewest)
        )
    return rows


def print_table(rows: list[Row], sizes: dict[str, int]) -> None:
    head = (
        f"{'engine':<9}{'items':>7}{'segs':>6}{'backfill/s':>12}{'reference/s':>13}"
        f"{'vs ref':>8}{'naive/s':>10}{'vs naive':>10}{'engine ceiling/s':>18}{'vs ceil':>9}"
        f"{'req/25 items':>14}{'req/fewest':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.engine:<9}{sizes[r.engine]:>7}{r.segments:>6}{r.backfill:>12,.0f}"
            f"{r.reference:>13,.0f}{r.backfill / r.reference:>8.2f}{r.naive:>10,.0f}"
            f"{r.backfill / r.naive:>10.2f}{r.ceiling:>18,.0f}{r.backfill / r.ceiling:>9.2f}"
            f"{r.requests_per_25:>14.3f}{r.requests_vs_fewest:>12.3f}"
        )
    print(
        "\nitems/s = source items / wall time; vs ref >= 0.9 and vs naive >= 2 are the targets;"
        "\nengine ceiling = 1 / (1/scan rate + 1/write rate) of the engine alone (a server that"
        "\nserves one request at a time): no copy can be faster; naive x 2 above it cannot be met;"
        "\nreq/25 items = BatchWriteItem requests x 25 / items (1.000 = one request per 25);"
        "\nreq/fewest = requests / the fewest possible (full batches of 25, each segment's last"
        "\nbatch partial): 1.000 means no request carried fewer than 25 items but those."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--items", type=int, default=3000, help="items on moto (default 3000)")
    parser.add_argument(
        "--dynalite-items", type=int, default=None, help="items on dynalite (default 3x --items)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--segments", default="1,2,4,8", help="segment counts to measure")
    parser.add_argument("--engines", default="moto,dynalite", help="moto, dynalite or both")
    args = parser.parse_args(argv)
    segment_counts = [int(x) for x in args.segments.split(",") if x]
    engines = [e for e in args.engines.split(",") if e]
    sizes = {"moto": args.items, "dynalite": args.dynalite_items or 3 * args.items}
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    for engine in engines:
        items = seeding.generate(sizes[engine], 0, seed=11).servers
        context = moto_engine() if engine == "moto" else dynalite_engine()
        with context as endpoint:
            rows += measure(engine, endpoint, items, segment_counts, say, max(1, args.repeat))
    print_table(rows, sizes)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
