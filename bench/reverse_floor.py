"""The floor of reverse replication (issue 14): the least any reverse replicator that detects
foreign writes must do per record, written straight, against the forward replicator on the
same records (bench.reverse's identity workload and in-memory DynamoDB).

    .venv/bin/python -m bench.reverse_floor [--records N] [--keys K] [--repeat 3]

Per batch the floor decodes each record's keys and new image, reads the source keys with
one BatchGetItem, keeps the last change per key, nets it against the item read (a write
only where it differs), and writes 25 a BatchWriteItem; "with fingerprint" also journals the
fingerprint of every item written (dualwrite.reverse.foreign, one control-table put a
batch). No direction, no quarantine, no failure tracking: what it leaves out only costs.
The ratio "floor with fingerprint / forward" bounds what bench.reverse's "reverse" line
can reach on this machine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from bench import replicator as rp
from bench import reverse as br
from dualwrite.reverse.foreign import key_fingerprint
from dualwrite.wire import Item, decode_json_item

SOURCE = "ServersTable"


def floor_apply(ddb: br.MemoryDynamoDB, chunk: Sequence[dict[str, Any]], journal: bool) -> None:
    last: dict[tuple[str, str], tuple[dict[str, Any], Item | None]] = {}
    for record in chunk:
        body = record["dynamodb"]
        keys = body["Keys"]
        new = body.get("NewImage")
        last[("id", keys["id"]["S"])] = (keys, decode_json_item(new) if new is not None else None)
    response = ddb.batch_get_item(
        RequestItems={SOURCE: {"Keys": [k for k, _ in last.values()], "ConsistentRead": True}}
    )
    found = {("id", i["id"]["S"]): i for i in response["Responses"].get(SOURCE, [])}
    writes: list[dict[str, Any]] = []
    for kid, (keys, image) in last.items():
        before = found.get(kid)
        if image is None:
            if before is not None:
                writes.append({"DeleteRequest": {"Key": keys}})
        elif before != image:
            writes.append({"PutRequest": {"Item": image}})
    if journal:
        prints = sorted({key_fingerprint(kid, image) for kid, (_, image) in last.items()})
        ddb.put_item(
            TableName="control",
            Item={"pk": {"S": "OWN#floor"}, "sk": {"S": prints[0]}, "f": {"SS": prints}},
        )
    for start in range(0, len(writes), 25):
        ddb.batch_write_item(RequestItems={SOURCE: writes[start : start + 25]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reverse_floor", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    stream, seeded = rp.workload("servers", args.records, args.keys)
    target = br.target_records("identity", stream)
    best: dict[str, float] = {}
    for _ in range(args.repeat):  # alternating, best of each: a busy machine slows all alike
        forward = br.forward("identity", stream, 100, 1, seeded).seconds_cpu
        runs = {"forward (Replicator.apply)": forward}
        for name, journal in (("floor with fingerprint", True), ("floor without", False)):
            ddb = br.MemoryDynamoDB()
            runs[name] = br.timed(lambda c, d=ddb, j=journal: floor_apply(d, c, j), target, 100)
        for name, cpu in runs.items():
            best[name] = min(best.get(name, cpu), cpu)
    base = best["forward (Replicator.apply)"]
    print(f"{args.records} records over {args.keys} keys (identity), batches of 100")
    for name, cpu in best.items():
        print(
            f"{name:<28} {args.records / cpu:>10,.0f} records/s/core  "
            f"{cpu * 1e6 / args.records:6.1f} us/record  {base / cpu:.2f}x forward"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
