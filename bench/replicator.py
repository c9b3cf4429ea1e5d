"""Replicator benchmark: records/s per core through the Lambda handler with an in-memory
DynamoDB, and DynamoDB requests per 1,000 records, against a naive handler that does one
PutItem/DeleteItem per record (plus, for memberships, a Query and a write of the User item).

    .venv/bin/python -m bench.replicator [--records N] [--keys K] [--batch 100] [--repeat 3]

Figures are measured, printed as ratios against the naive handler. The in-memory client is
deliberately cheap so the figures are the replicator's own CPU cost; both handlers share it.
Last, the servers route through the same handler with the builtin class and with the same
mapping written declaratively (DESIGN.md section 11), on the same records: the ratio of their
records/s (target >= 0.9x), and of their transform alone.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore, Phase
from dualwrite.errors import UnmappableError
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema, Mapping
from dualwrite.runtime import Runtime
from dualwrite.seed import membership_item, server_id, server_item, user_id
from dualwrite.wire import Item, item_from_lambda, items_equal, to_lambda_json
from stream_replicator import handler
from stream_replicator.apply import Replicator
from stream_replicator.planning import classify, coalesce
from stream_replicator.records import parse

MIGRATION = {
    "control_table": "control",
    "metrics_namespace": "Bench",
    "routes": [
        {"name": "servers", "source": "ServersTable", "target": "CoreTable", "mapping": "servers"},
        {
            "name": "memberships",
            "source": "UserMembershipTable",
            "target": "CoreTable",
            "mapping": "memberships",
        },
    ],
    "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
}
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "ServersTable": (("id", "S"),),
    "UserMembershipTable": (("userId", "S"), ("serverId", "S")),
    "CoreTable": (("PK", "S"), ("SK", "S")),
    "control": (("pk", "S"), ("sk", "S")),
}


class MemoryDynamoDB:
    """The DynamoDB data-plane calls the replicator makes, in memory, counted. Items are held
    per hash key, so a Query costs what it returns (as in DynamoDB, unlike moto)."""

    #: the tables it holds, with their key schemas (a subclass may hold more)
    schemas: dict[str, tuple[tuple[str, str], ...]] = SCHEMAS

    def __init__(self, latency: float = 0.0) -> None:
        self.tables: dict[str, dict[str, dict[str, Item]]] = {n: {} for n in self.schemas}
        self.calls: Counter[str] = Counter()
        #: seconds each request takes (a network round trip), 0 for pure CPU figures
        self.latency = latency

    def _hit(self, op: str) -> None:
        self.calls[op] += 1
        if self.latency:
            time.sleep(self.latency)

    def _kid(self, table: str, item: Item) -> tuple[str, str]:
        schema = self.schemas[table]
        return item[schema[0][0]]["S"], item[schema[1][0]]["S"] if len(schema) > 1 else ""

    def put(self, table: str, item: Item) -> None:
        h, r = self._kid(table, item)
        self.tables[table].setdefault(h, {})[r] = item

    def remove(self, table: str, key: Item) -> None:
        h, r = self._kid(table, key)
        self.tables[table].get(h, {}).pop(r, None)

    def items(self, table: str) -> dict[tuple[str, str], Item]:
        return {(h, r): i for h, rs in self.tables[table].items() for r, i in rs.items()}

    def describe_table(self, TableName: str) -> Any:
        self._hit("DescribeTable")
        schema = self.schemas[TableName]
        return {
            "Table": {
                "TableName": TableName,
                "KeySchema": [
                    {"AttributeName": n, "KeyType": "HASH" if i == 0 else "RANGE"}
                    for i, (n, _) in enumerate(schema)
                ],
                "AttributeDefinitions": [
                    {"AttributeName": n, "AttributeType": t} for n, t in schema
                ],
            }
        }

    def batch_write_item(self, RequestItems: dict[str, Any], **_kw: Any) -> Any:
        self._hit("BatchWriteItem")
        for table, requests in RequestItems.items():
            assert len(requests) <= 25
            seen = set()
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    kid = self._kid(table, item)
                    self.put(table, item)
                else:
                    kid = self._kid(table, request["DeleteRequest"]["Key"])
                    self.remove(table, request["DeleteRequest"]["Key"])
                assert kid not in seen, "duplicate key in one BatchWriteItem"
                seen.add(kid)
        return {"UnprocessedItems": {}}

    def put_item(self, TableName: str, Item: Item, **_kw: Any) -> Any:
        self._hit("PutItem")
        self.put(TableName, Item)
        return {}

    def delete_item(self, TableName: str, Key: Item, **_kw: Any) -> Any:
        self._hit("DeleteItem")
        self.remove(TableName, Key)
        return {}

    def get_item(self, TableName: str, Key: Item, **_kw: Any) -> Any:
        self._hit("GetItem")
        h, r = self._kid(TableName, Key)
        item = self.tables[TableName].get(h, {}).get(r)
        return {"Item": item} if item is not None else {}

    def query(
        self,
        TableName: str,
        ExpressionAttributeValues: dict[str, Any],
        **_kw: Any,
    ) -> Any:
        self._hit("Query")
        values = ExpressionAttributeValues
        ((_, value),) = [(k, v) for k, v in values.items() if k != ":prefix"]
        prefix = values.get(":prefix", {}).get("S", "")
        found = self.tables[TableName].get(value["S"], {})
        return {"Items": [found[r] for r in sorted(found) if r.startswith(prefix)]}


# --- workloads ---------------------------------------------------------------------------
def _arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2024-01-01T00:00:00.000"


def _record(
    name: str, table: str, keys: Item, new: Item | None, old: Item | None, seq: int
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1_700_000_000 + seq // 1000,
        "Keys": to_lambda_json(keys),
        "SequenceNumber": str(10**20 + seq),
        "SizeBytes": 200,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        body["NewImage"] = to_lambda_json(new)
    if old is not None:
        body["OldImage"] = to_lambda_json(old)
    return {
        "eventID": f"e{seq}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
        "eventSourceARN": _arn(table),
    }


def workload(
    route: str, records: int, keys: int, seed: int = 7
) -> tuple[list[dict[str, Any]], MemoryDynamoDB]:
    """A change stream over `keys` source keys (inserts, updates, ~5% deletes), and the
    source table's final state (the derived User item is read from it)."""
    rng = random.Random(seed)
    source: dict[Any, Item] = {}
    out: list[dict[str, Any]] = []
    table = "ServersTable" if route == "servers" else "UserMembershipTable"
    users = max(1, keys // 3)
    for seq in range(records):
        k = rng.randrange(keys)
        if route == "servers":
            new = server_item(rng, k)
            kid: Any = (new["id"]["S"],)
            key = {"id": new["id"]}
        else:
            u, s = k % users, k // users
            email = f"u{u}@example.com" if rng.random() < 0.9 else None
            new = membership_item(rng, u, s, email)
            kid = (user_id(u), server_id(s))
            key = {"userId": new["userId"], "serverId": new["serverId"]}
        old = source.get(kid)
        if old is not None and rng.random() < 0.05:
            out.append(_record("REMOVE", table, key, None, old, seq))
            del source[kid]
            continue
        out.append(_record("MODIFY" if old else "INSERT", table, key, new, old, seq))
        source[kid] = new
    ddb = MemoryDynamoDB()
    for item in source.values():
        ddb.put(table, item)
    return out, ddb


def batches(records: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(records), size):
        yield list(records[start : start + size])


# --- the two handlers ----------------------------------------------------------------------
#: the builtin `servers` mapping written declaratively (DESIGN.md section 11), for the
#: declarative-vs-class figure
SERVERS_DECLARATIVE: dict[str, Any] = {
    "key": {"PK": "SERVER#{id}", "SK": "METADATA"},
    "set": {"Type": "Server"},
}


def migration(servers_mapping: Any = "servers") -> Migration:
    data = {**MIGRATION, "routes": [dict(r) for r in MIGRATION["routes"]]}
    data["routes"][0]["mapping"] = servers_mapping
    return parse_migration(data, "bench")


def ours(
    ddb: MemoryDynamoDB, servers_mapping: Any = "servers"
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    mig = migration(servers_mapping)
    store = ControlStore(ddb, mig.control_table, clock=lambda: 1_700_000_000.0)
    for route in mig.routes:
        store.set_phase(route.name, Phase.BACKFILLED)
    rep = Replicator(
        mig, Clients(AwsSettings()), store, dynamodb=ddb, backoff=Backoff(sleep=lambda _s: None)
    )
    runtime = Runtime.of(mig, Clients(AwsSettings()), store)
    runtime.part("replicator", lambda: rep)

    @dataclass
    class Context:
        aws_request_id: str = "bench"

        def get_remaining_time_in_millis(self) -> int:
            return 900_000

    context = Context()

    def invoke(records: list[dict[str, Any]]) -> dict[str, Any]:
        response: dict[str, Any] = handler.lambda_handler(
            {"Records": records}, context, runtime=runtime
        )
        return response

    return invoke


def naive(ddb: MemoryDynamoDB) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """One PutItem/DeleteItem per record (and, for memberships, a Query and a User write)."""
    mig = migration()
    mappings: dict[str, tuple[Any, Mapping]] = {}
    for route in mig.routes:
        desc = ddb.describe_table(TableName=route.source)["Table"]
        schema = tuple(
            (a["AttributeName"], a["AttributeType"]) for a in desc["AttributeDefinitions"]
        )
        mappings[route.source] = (route, build_mapping(route.mapping, KeySchema(schema)))

    def invoke(records: list[dict[str, Any]]) -> dict[str, Any]:
        for r in records:
            route, mapping = mappings[r["eventSourceARN"].split("/")[1]]
            body = r["dynamodb"]
            keys = item_from_lambda(body["Keys"])
            if r["eventName"] == "REMOVE":
                for tkey in mapping.target_keys(keys):
                    ddb.delete_item(TableName=route.target, Key=tkey)
            else:
                with contextlib.suppress(UnmappableError):
                    ddb.put_item(
                        TableName=route.target,
                        Item=mapping.transform(item_from_lambda(body["NewImage"])),
                    )
            if mapping.group_attr:
                group = keys[mapping.group_attr]
                members = ddb.query(
                    TableName=route.source,
                    KeyConditionExpression="#k = :v",
                    ExpressionAttributeNames={"#k": mapping.group_attr},
                    ExpressionAttributeValues={":v": group},
                    ConsistentRead=True,
                )["Items"]
                derived = mapping.derive(group, members)
                if derived is None:
                    ddb.delete_item(TableName=route.target, Key=mapping.derived_key(group))
                else:
                    ddb.put_item(TableName=route.target, Item=derived)
        return {"batchItemFailures": []}

    return invoke


def bound(records: Sequence[dict[str, Any]], size: int) -> dict[str, int]:
    """The target: ceil(coalesced writes / 25) BatchWriteItem + one Query per affected user,
    per batch, computed from the pure planner."""
    mig = migration()
    total = Counter[str]()
    mappings = {
        r.source: build_mapping(
            r.mapping,
            __import__("dualwrite.mapping.base", fromlist=["KeySchema"]).KeySchema(
                SCHEMAS[r.source]
            ),
        )
        for r in mig.routes
    }
    for batch in batches(records, size):
        changes = [parse(r, i) for i, r in enumerate(batch)]
        mapping = mappings[changes[0].table]
        items = [classify(mapping, c, ("PK", "SK")) for c in changes]
        plan = coalesce(items, set(), ("PK", "SK"))
        writes = len(plan.writes) + len(plan.groups)
        total["BatchWriteItem"] += math.ceil(writes / 25)
        total["Query"] += len(plan.groups)
    return dict(total)


Factory = Callable[[MemoryDynamoDB], Callable[[list[dict[str, Any]]], dict[str, Any]]]


@dataclass
class Run:
    #: CPU seconds per batch
    batch_cpu: list[float]
    seconds_wall: float
    calls: Counter[str]
    final: dict[Any, Item]


def run_once(
    make: Factory, route: str, records: int, keys: int, size: int, latency: float = 0.0
) -> Run:
    stream, ddb = workload(route, records, keys)
    invoke = make(ddb)
    ddb.calls.clear()
    ddb.latency = latency
    chunks = list(batches(stream, size))
    # A Lambda's heap holds one event, not the whole stream: keep the pre-built records out
    # of the garbage collector's way, as they would be
    gc.collect()
    gc.freeze()
    sink = io.StringIO()
    times: list[float] = []
    try:
        with contextlib.redirect_stdout(sink):  # EMF and logs: produced, measured, not shown
            wall0 = time.perf_counter()
            for chunk in chunks:
                cpu0 = time.process_time()
                response = invoke(chunk)
                times.append(time.process_time() - cpu0)
                assert response == {"batchItemFailures": []}, response
            wall = time.perf_counter() - wall0
    finally:
        gc.unfreeze()
    return Run(times, wall, Counter(ddb.calls), ddb.items("CoreTable"))


@dataclass
class Measured:
    #: sum over batches of each batch's least CPU time across the repeats (timeit's "min":
    #: on a shared machine, noise only ever adds time)
    seconds_cpu: float
    #: the plain total of the quickest whole run, for comparison
    seconds_cpu_run: float
    seconds_wall: float
    calls: Counter[str]
    final: dict[Any, Item]


def measure(
    route: str, records: int, keys: int, size: int, repeat: int, latency: float = 0.0
) -> tuple[Measured, Measured]:
    """Each handler `repeat` times, interleaved so that a noisy machine treats both alike."""
    runs: dict[str, list[Run]] = {"ours": [], "naive": []}
    for _ in range(repeat):
        for name, make in (("ours", ours), ("naive", naive)):
            runs[name].append(run_once(make, route, records, keys, size, latency))
    out = []
    for name in ("ours", "naive"):
        rs = runs[name]
        per_batch = [min(times) for times in zip(*(r.batch_cpu for r in rs), strict=True)]
        quickest = min(rs, key=lambda r: sum(r.batch_cpu))
        out.append(
            Measured(
                sum(per_batch),
                sum(quickest.batch_cpu),
                min(r.seconds_wall for r in rs),
                quickest.calls,
                quickest.final,
            )
        )
    return out[0], out[1]


@dataclass
class DeclarativeFigure:
    """The servers route through the handler and through transform alone: the builtin
    class against the same mapping written declaratively, on the same records."""

    class_rps: float
    declarative_rps: float
    class_transform_rps: float
    declarative_transform_rps: float

    @property
    def ratio(self) -> float:
        return self.declarative_rps / self.class_rps

    @property
    def transform_ratio(self) -> float:
        return self.declarative_transform_rps / self.class_transform_rps


def measure_declarative(records: int, keys: int, size: int, repeat: int) -> DeclarativeFigure:
    """Records/s per core (CPU), best per batch over `repeat` interleaved runs."""
    runs: dict[str, list[Run]] = {"class": [], "declarative": []}
    makers: dict[str, Factory] = {
        "class": ours,
        "declarative": lambda ddb: ours(ddb, SERVERS_DECLARATIVE),
    }
    for i in range(repeat):
        # the order alternates: on a loaded machine the second of two runs in a row is slower
        for name in ("class", "declarative") if i % 2 == 0 else ("declarative", "class"):
            runs[name].append(run_once(makers[name], "servers", records, keys, size))
    a, b = runs["class"][0].final, runs["declarative"][0].final
    assert a.keys() == b.keys() and all(items_equal(a[k], b[k]) for k in a)  # same target
    rps = {
        name: records / sum(min(t) for t in zip(*(r.batch_cpu for r in rs), strict=True))
        for name, rs in runs.items()
    }
    stream, _ddb = workload("servers", records, keys)
    images = [
        item_from_lambda(r["dynamodb"]["NewImage"]) for r in stream if r["dynamodb"].get("NewImage")
    ]
    schema = KeySchema(SCHEMAS["ServersTable"])
    mappings = {
        "class": build_mapping("servers", schema),
        "declarative": build_mapping(migration(SERVERS_DECLARATIVE).routes[0].mapping, schema),
    }
    best = {name: math.inf for name in mappings}
    for i in range(repeat):
        for name in ("class", "declarative") if i % 2 == 0 else ("declarative", "class"):
            transform = mappings[name].transform
            cpu0 = time.process_time()
            for image in images:
                transform(image)
            best[name] = min(best[name], time.process_time() - cpu0)
    return DeclarativeFigure(
        rps["class"],
        rps["declarative"],
        len(images) / best["class"],
        len(images) / best["declarative"],
    )


def per_thousand(calls: Counter[str], records: int) -> dict[str, float]:
    return {op: round(n * 1000 / records, 1) for op, n in sorted(calls.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="Make every in-memory request take this long (a round trip), and compare wall "
        "time too. 0 (the default) measures CPU only.",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    handler.logger.setLevel(logging.WARNING)  # its per-batch INFO line is not the point here
    print(
        f"{args.records} records over {args.keys} source keys, batches of {args.batch}, "
        f"best of {args.repeat}; CPU time of one process (one core)"
    )
    for route in ("servers", "memberships"):
        latency = args.latency_ms / 1000.0
        a, b = measure(route, args.records, args.keys, args.batch, args.repeat, latency)
        # same final target either way, or the figures mean nothing
        assert a.final.keys() == b.final.keys()
        assert all(items_equal(a.final[k], b.final[k]) for k in a.final)
        ours_rps = args.records / a.seconds_cpu
        naive_rps = args.records / b.seconds_cpu
        ours_req = sum(v for k, v in a.calls.items() if k != "GetItem")
        naive_req = sum(b.calls.values())
        target = bound(workload(route, args.records, args.keys)[0], args.batch)
        print(f"\n[{route}]")
        print(
            f"  handler (ours):  {ours_rps:>9,.0f} records/s per core   "
            f"(quickest whole run {args.records / a.seconds_cpu_run:,.0f}/s, "
            f"wall {args.records / a.seconds_wall:,.0f}/s)"
        )
        print(
            f"  naive handler:   {naive_rps:>9,.0f} records/s per core   "
            f"(quickest whole run {args.records / b.seconds_cpu_run:,.0f}/s, "
            f"wall {args.records / b.seconds_wall:,.0f}/s)"
        )
        print(f"  ratio:           {ours_rps / naive_rps:.2f}x records/s (CPU)")
        if latency:
            ours_wall, naive_wall = args.records / a.seconds_wall, args.records / b.seconds_wall
            print(
                f"  with {args.latency_ms:g} ms per request: {ours_wall:,.0f} vs "
                f"{naive_wall:,.0f} records/s (wall), {ours_wall / naive_wall:.1f}x"
            )
        print(f"  requests / 1,000 records, ours:  {per_thousand(a.calls, args.records)}")
        print(f"  requests / 1,000 records, naive: {per_thousand(b.calls, args.records)}")
        print(
            f"  data-plane requests: {naive_req / max(1, ours_req):.1f}x fewer than naive "
            f"({ours_req} vs {naive_req}; ours also reads the route's phase: "
            f"{a.calls['GetItem']} GetItem)"
        )
        ok = a.calls["BatchWriteItem"] <= target.get("BatchWriteItem", 0) and a.calls[
            "Query"
        ] <= target.get("Query", 0)
        print(
            f"  target <= ceil(coalesced writes/25) BatchWriteItem + 1 Query per user per batch: "
            f"{target} -> {'met' if ok else 'NOT met'}"
        )
    fig = measure_declarative(args.records, args.keys, args.batch, args.repeat)
    print("\n[servers: declarative mapping vs the builtin class, same records]")
    print(
        f"  handler:   {fig.declarative_rps:>9,.0f} vs {fig.class_rps:,.0f} records/s per core "
        f"-> {fig.ratio:.2f}x (target >= 0.9x)"
    )
    print(
        f"  transform: {fig.declarative_transform_rps:>9,.0f} vs {fig.class_transform_rps:,.0f} "
        f"items/s -> {fig.transform_ratio:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
