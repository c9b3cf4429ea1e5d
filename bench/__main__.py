"""`make bench`: the benchmarks in one run, one table of ratios against their baselines.

    .venv/bin/python -m bench [--quick]

Each benchmark keeps its own command for more detail (python -m bench.replicator,
bench.backfill, bench.reconcile, bench.reverse). Figures are measured now, on this machine;
ratios compare runs made in this same process against the same engine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import platform
import sys
import time

from bench import backfill as bf
from bench import reconcile as rc
from bench import replicator as rp
from bench import reverse as rv
from bench.engines import ENGINES
from dualwrite import seed as seeding
from reconciler.passes import DEFAULT_PAGE_SIZE
from stream_replicator import handler


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    rows: list[tuple[str, str, str, str]] = []  # (benchmark, measure, value, baseline/target)

    # --- replicator: in-process, in-memory DynamoDB --------------------------------------
    records = 5_000 if args.quick else 20_000
    handler.logger.setLevel(logging.WARNING)
    for route in ("servers", "memberships"):
        say(f"replicator: {route}, {records} records")
        with contextlib.redirect_stdout(io.StringIO()):
            ours, naive = rp.measure(route, records, records // 10, 100, 3)
        ours_rps, naive_rps = records / ours.seconds_cpu, records / naive.seconds_cpu
        ours_req = sum(v for k, v in ours.calls.items() if k != "GetItem")
        naive_req = sum(naive.calls.values())
        rows.append(
            (
                f"replicator/{route}",
                "records/s per core (CPU)",
                f"{ours_rps:,.0f}",
                f"{ours_rps / naive_rps:.2f}x naive ({naive_rps:,.0f})",
            )
        )
        rows.append(
            (
                f"replicator/{route}",
                "data-plane requests / 1,000 records",
                f"{ours_req * 1000 / records:,.1f}",
                f"{naive_req / max(1, ours_req):.1f}x fewer than naive",
            )
        )

    say(f"replicator: servers, declarative mapping vs the builtin class, {records} records")
    with contextlib.redirect_stdout(io.StringIO()):
        fig = rp.measure_declarative(records, records // 10, 100, 3)
    rows.append(
        (
            "replicator/servers declarative",
            "records/s per core (CPU)",
            f"{fig.declarative_rps:,.0f}",
            f"{fig.ratio:.2f}x the builtin class ({fig.class_rps:,.0f}; target >= 0.9x), "
            f"transform alone {fig.transform_ratio:.2f}x",
        )
    )

    # --- reverse replication (issue 14): the same records both ways ----------------------
    for route in rv.ROUTES:
        say(f"reverse: {route}, {records} records, forward vs reverse")
        fig = rv.measure(route, records, records // 10, 100, 3)
        rows.append(
            (
                f"reverse/{route}",
                "records/s per core (CPU)",
                f"{fig.reverse_rps:,.0f}",
                f"{fig.ratio:.2f}x forward ({fig.forward_rps:,.0f}; target >= 0.8x)",
            )
        )
        rows.append(
            (
                f"reverse/{route}",
                "requests / 1,000 records",
                f"{fig.per_thousand(fig.reverse):,.1f}",
                f"forward {fig.per_thousand(fig.forward):,.1f}; "
                f"{sum(fig.reverse.calls.values())} requests, bound {fig.reverse.bound}",
            )
        )

    # --- backfill: moto and dynalite ----------------------------------------------------
    for engine, n in (
        ("moto", 1500 if args.quick else 3000),
        ("dynalite", 4500 if args.quick else 9000),
    ):
        items = seeding.generate(n, 0, seed=11).servers
        context = ENGINES[engine]()
        with context as endpoint:
            for row in bf.measure(engine, endpoint, items, [1, 4], say, repeat=2):
                label = f"backfill/{engine} ({n} items, {row.segments} seg)"
                rows.append(
                    (
                        label,
                        "items/s",
                        f"{row.backfill:,.0f}",
                        f"{row.backfill / row.reference:.2f}x reference, "
                        f"{row.backfill / row.naive:.2f}x naive serial, "
                        f"{row.backfill / row.ceiling:.2f}x the engine's ceiling "
                        f"(naive: {row.naive / row.ceiling:.2f}x)",
                    )
                )
                rows.append(
                    (
                        label,
                        "BatchWriteItem per 25 items",
                        f"{row.requests_per_25:.3f}",
                        f"{row.requests_vs_fewest:.3f}x the fewest possible",
                    )
                )

    # --- reconcile: moto and dynalite ----------------------------------------------------
    for engine, n in (
        ("moto", 3000 if args.quick else 10_000),
        ("dynalite", 10_000 if args.quick else 100_000),
    ):
        say(f"reconcile: {engine}, {n} items")
        res = rc.measure(engine, n, 4, DEFAULT_PAGE_SIZE, 1 if args.quick else 3)
        label = f"reconcile/{engine} ({n} items)"
        rows.append(
            (
                label,
                "items verified/s",
                f"{res.verified_items_per_s:,.0f}",
                f"{res.ratio:.2f}x raw scan ({res.scan_items_per_s:,.0f}/s), "
                f"{res.ratio_plain:.2f}x plain boto3 scan "
                f"({res.plain_scan_items_per_s:,.0f}/s)",
            )
        )
        rows.append((label, "peak memory (MiB)", f"{res.peak_mib:.1f}", "tracemalloc"))

    print(
        f"\ndualwrite benchmarks, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("benchmark", "measure", "value", "against the baseline")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print(
            "  ".join(
                (
                    r[0].ljust(widths[0]),
                    r[1].ljust(widths[1]),
                    r[2].rjust(widths[2]),
                    r[3].ljust(widths[3]),
                )
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
