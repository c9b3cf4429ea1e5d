"""Reverse replication benchmark (issue 14): records/s per core of the reverse writer's apply
against the forward replicator's apply on the same records, and DynamoDB requests per 1,000
changed records, side by side, for the identity and the CoreTable (servers, memberships)
mappings.

    .venv/bin/python -m bench.reverse [--records N] [--keys K] [--batch 100] [--repeat 3]
        [--routes identity,servers,memberships,memberships*]

"The same records": the forward workload of bench.replicator (inserts, updates, ~5% deletes
over K keys), and for reverse the same changes as the target's stream carries them (images
mapped; for identity the very same records from the renamed table). Forward applies them
to an empty target with Replicator.apply; reverse applies them to an empty source with
ReverseWriter.apply (Lambda record parsing included on both sides). Both run on the
in-memory DynamoDB of bench.replicator (extended with BatchGetItem and UpdateItem), so the
figures are the code's own CPU cost; forward and reverse runs alternate and the best of
--repeat counts on each side (on a shared machine a run's figure moves by up to ~20%, so
compare ratios within one run). The request bound per batch is ceil(BatchWriteItem
writes / 25) + the UpdateItem calls + ceil(source keys / 100) BatchGetItem (+ for
memberships ceil(users / 100) BatchGetItem of User items and one Query per User item change).
"""

from __future__ import annotations

import argparse
import gc
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import replicator as rp
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore, Phase
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema, Mapping
from dualwrite.reverse.direction import Direction, Flow
from dualwrite.reverse.foreign import OwnWrites
from dualwrite.reverse.model import TargetChange
from dualwrite.reverse.writer import ReverseWriter
from dualwrite.wire import Item, item_from_lambda, to_lambda_json
from stream_replicator.apply import Replicator
from stream_replicator.results import Mark

SCHEMAS = {**rp.SCHEMAS, "ServersRenamed": (("id", "S"),)}
#: route -> (forward workload, source table, target table, mapping spec)
ROUTES: dict[str, tuple[str, str, str, str]] = {
    "identity": ("servers", "ServersTable", "ServersRenamed", "identity"),
    "servers": ("servers", "ServersTable", "CoreTable", "servers"),
    "memberships": ("memberships", "UserMembershipTable", "CoreTable", "memberships"),
}
#: the bench's clock: after every record of the workload (ApproximateCreationDateTime
#: 1_700_000_000 on)
NOW = 1_700_000_100.0
#: reverse since long before the workload's records, the forward drain done
REVERSED = Direction(Flow.REVERSE, switched_at=1_600_000_000.0, overlap_s=3.0, old_drained=True)
#: the control table's requests (phase, direction, own-writes journal) are counted apart
#: under this prefix: they are not the data's
CONTROL = "control "
_ASSIGN = re.compile(r"(#\w+) = (:\w+)")


class MemoryDynamoDB(rp.MemoryDynamoDB):
    """bench.replicator's in-memory DynamoDB, with the renamed table, BatchGetItem and
    UpdateItem (the expressions the reverse writer makes)."""

    schemas = SCHEMAS

    def batch_get_item(self, RequestItems: dict[str, Any], **_kw: Any) -> Any:
        self._hit("BatchGetItem")
        out: dict[str, list[Item]] = {}
        for table, spec in RequestItems.items():
            assert len(spec["Keys"]) <= 100
            for key in spec["Keys"]:
                h, r = self._kid(table, key)
                item = self.tables[table].get(h, {}).get(r)
                if item is not None:
                    out.setdefault(table, []).append(item)
        return {"Responses": out, "UnprocessedKeys": {}}

    def _control(self, table: str, op: str) -> None:
        if table == "control":
            self.calls[op] -= 1
            self.calls[CONTROL + op] += 1

    def get_item(self, TableName: str, Key: Item, **kw: Any) -> Any:
        out = super().get_item(TableName, Key, **kw)
        self._control(TableName, "GetItem")
        return out

    def put_item(self, TableName: str, Item: Item, **kw: Any) -> Any:
        out = super().put_item(TableName, Item, **kw)
        self._control(TableName, "PutItem")
        return out

    def query(self, TableName: str, ExpressionAttributeValues: dict[str, Any], **kw: Any) -> Any:
        out = super().query(TableName, ExpressionAttributeValues, **kw)
        self._control(TableName, "Query")
        return out

    def update_item(
        self,
        TableName: str,
        Key: Item,
        UpdateExpression: str,
        ExpressionAttributeNames: dict[str, str],
        ExpressionAttributeValues: dict[str, Any] | None = None,
        **_kw: Any,
    ) -> Any:
        self._hit("UpdateItem")
        h, r = self._kid(TableName, Key)
        item = dict(self.tables[TableName].get(h, {}).get(r) or Key)
        set_part, _, remove_part = UpdateExpression.partition("REMOVE ")
        for name, value in _ASSIGN.findall(set_part):
            item[ExpressionAttributeNames[name]] = (ExpressionAttributeValues or {})[value]
        for name in filter(None, (n.strip() for n in remove_part.split(","))):
            item.pop(ExpressionAttributeNames[name], None)
        self.put(TableName, item)
        return {}


def _mapping(route: str) -> Mapping:
    _, source, _, spec = ROUTES[route]
    return build_mapping(spec, KeySchema(SCHEMAS[source]))


def _arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2024-01-01T00:00:00.000"


def target_records(route: str, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same changes as the target's stream carries them."""
    mapping = _mapping(route)
    _, _, target, _ = ROUTES[route]
    out = []
    for r in records:
        body = dict(r["dynamodb"])
        images = {}
        for name in ("NewImage", "OldImage"):
            if name in body:
                images[name] = mapping.transform(item_from_lambda(body[name]))
                body[name] = to_lambda_json(images[name])
        keys = mapping.target_keys(item_from_lambda(r["dynamodb"]["Keys"]))[0]
        body["Keys"] = to_lambda_json(keys)
        out.append({**r, "dynamodb": body, "eventSourceARN": _arn(target)})
    return out


@dataclass
class Side:
    seconds_cpu: float
    calls: Counter[str]
    #: source keys written (changed) in the run
    changed: int
    bound: int


def migration(route: str) -> Migration:
    """The migration file both sides run with. CoreTable is the target of both CoreTable
    routes, as in production, so a target-stream record is dispatched to its route by key."""
    _, source, target, spec = ROUTES[route]
    if target == "CoreTable":
        return rp.migration()
    return parse_migration(
        {
            "control_table": "control",
            "metrics_namespace": "Bench",
            "routes": [{"name": route, "source": source, "target": target, "mapping": spec}],
        },
        "bench",
    )


def _replicator(mig: Migration, ddb: MemoryDynamoDB, store: ControlStore) -> Replicator:
    rep = Replicator(
        mig,
        Clients(AwsSettings()),
        store,
        dynamodb=ddb,
        clock=lambda: NOW,
        backoff=Backoff(sleep=lambda _s: None),
    )
    for r in mig.routes:
        rep.context(r)  # DescribeTable once, before the clock starts
    return rep


def forward(
    route: str, records: list[dict[str, Any]], size: int, repeat: int, seeded: rp.MemoryDynamoDB
) -> Side:
    _, source, _, _ = ROUTES[route]
    mig = migration(route)
    best: Side | None = None
    for _ in range(repeat):
        ddb = MemoryDynamoDB()
        ddb.tables[source] = seeded.tables[source]  # the source as the changes left it
        store = ControlStore(ddb, "control", clock=lambda: NOW)
        for r in mig.routes:
            store.set_phase(r.name, Phase.BACKFILLED)
        rep = _replicator(mig, ddb, store)
        ddb.calls.clear()
        cpu = timed(rep.apply, records, size)
        side = Side(cpu, _data_calls(ddb), len(records), 0)
        if best is None or side.seconds_cpu < best.seconds_cpu:
            best = side
    assert best is not None
    return best


def _data_calls(ddb: MemoryDynamoDB) -> Counter[str]:
    return Counter({k: v for k, v in ddb.calls.items() if v and not k.startswith(CONTROL)})


@dataclass
class _JournalCount(ControlStore):
    """The bench's control store, counting the source writes each reverse batch journals
    (once: an entry is journaled again with its span narrowed)."""

    written: int = 0
    seen: set[str] = field(default_factory=set)

    def record_own_writes(self, own: OwnWrites) -> None:
        if own.id not in self.seen:
            self.seen.add(own.id)
            self.written += len(own.fingerprints)
        super().record_own_writes(own)


def replicated(
    route: str,
    records: list[dict[str, Any]],
    size: int,
    repeat: int,
    final_target: dict[Any, Item],
) -> Side:
    """Reverse through Replicator.apply, as production runs it (Lambda and runner alike):
    the route's direction reverse and drained in the control table, records dispatched by
    key, decided per record, own writes journaled."""
    _, _, target, _ = ROUTES[route]
    mig = migration(route)
    stream = target_records(route, records)
    best: Side | None = None
    for _ in range(repeat):
        ddb = MemoryDynamoDB()
        for item in final_target.values():
            ddb.put(target, item)  # the User items a new membership takes its email from
        store = _JournalCount(ddb, "control", clock=lambda: NOW)
        for r in mig.routes:
            store.set_phase(r.name, Phase.BACKFILLED)
            assert store.save_direction(r.name, REVERSED, expected=Direction())
        rep = _replicator(mig, ddb, store)
        totals = Counter[str]()

        def apply(
            chunk: list[dict[str, Any]],
            rep: Replicator = rep,
            store: _JournalCount = store,
            ddb: MemoryDynamoDB = ddb,
            totals: Counter[str] = totals,
        ) -> None:
            written, updates = store.written, ddb.calls["UpdateItem"]
            result = rep.apply(chunk)
            assert all(m is Mark.REVERSE for m in result.marks), result.reasons
            written, updates = store.written - written, ddb.calls["UpdateItem"] - updates
            totals["changed"] += written
            totals["bound"] += math.ceil((written - updates) / 25) + updates

        ddb.calls.clear()
        cpu = timed(apply, stream, size)
        calls = _data_calls(ddb)
        bound = totals["bound"] + calls["BatchGetItem"] + calls["Query"]
        side = Side(cpu, calls, totals["changed"], bound)
        if best is None or side.seconds_cpu < best.seconds_cpu:
            best = side
    assert best is not None
    return best


def reverse(
    route: str,
    records: list[dict[str, Any]],
    size: int,
    repeat: int,
    final_target: dict[Any, Item],
    merge_updates: bool = False,
) -> Side:
    _, source, target, _ = ROUTES[route]
    mapping = _mapping(route)
    stream = target_records(route, records)
    best: Side | None = None
    for _ in range(repeat):
        ddb = MemoryDynamoDB()
        for item in final_target.values():
            ddb.put(target, item)  # the User items a new membership takes its email from
        writer = ReverseWriter(
            ddb,
            route,
            source,
            target,
            mapping,
            backoff=Backoff(sleep=lambda _s: None),
            merge_updates=merge_updates,
        )
        totals = Counter[str]()

        def apply(
            chunk: list[dict[str, Any]], w: ReverseWriter = writer, totals: Counter[str] = totals
        ) -> None:
            result = w.apply([TargetChange.from_lambda(r) for r in chunk])
            assert not result.failed and not result.unrepresentable, result
            totals["changed"] += result.written
            totals["bound"] += math.ceil((result.puts + result.deletes) / 25) + result.updates

        cpu = timed(apply, stream, size)
        calls = Counter(ddb.calls)
        bound = totals["bound"] + calls["BatchGetItem"] + calls["Query"]
        side = Side(cpu, calls, totals["changed"], bound)
        if best is None or side.seconds_cpu < best.seconds_cpu:
            best = side
    assert best is not None
    return best


def timed(
    apply: Callable[[list[dict[str, Any]]], Any], records: list[dict[str, Any]], size: int
) -> float:
    """CPU seconds of `apply` over the records in batches of `size` (the garbage of the
    setup frozen, so that no collection of it is counted)."""
    chunks = list(rp.batches(records, size))
    gc.collect()
    gc.freeze()
    total = 0.0
    try:
        for chunk in chunks:
            cpu0 = time.process_time()
            apply(chunk)
            total += time.process_time() - cpu0
    finally:
        gc.unfreeze()
    return total


@dataclass
class Figure:
    route: str
    records: int
    forward: Side
    #: reverse through Replicator.apply (production's path); None for memberships*
    replicated: Side | None
    #: reverse through ReverseWriter.apply alone
    writer: Side

    def rps(self, side: Side) -> float:
        return self.records / side.seconds_cpu

    def ratio(self, side: Side) -> float:
        return self.rps(side) / self.rps(self.forward)

    def per_thousand(self, side: Side) -> float:
        """DynamoDB requests per 1,000 records."""
        return sum(side.calls.values()) * 1000 / self.records

    @staticmethod
    def per_thousand_changed(side: Side) -> float:
        """Reverse: requests per 1,000 changed source items (echoes change nothing)."""
        return sum(side.calls.values()) * 1000 / max(1, side.changed)


def _best(a: Side | None, b: Side) -> Side:
    return b if a is None or b.seconds_cpu < a.seconds_cpu else a


def measure(
    route: str, records: int, keys: int, size: int, repeat: int, merge_updates: bool = False
) -> Figure:
    kind, source, _, _ = ROUTES[route]
    stream, ddb = rp.workload(kind, records, keys)
    mapping = _mapping(route)
    final: dict[Any, Item] = {}
    if mapping.group_attr:  # the target's User items as forward left them
        by_user: dict[str, list[Item]] = {}
        for item in ddb.items(source).values():
            by_user.setdefault(item["userId"]["S"], []).append(item)
        for user, members in by_user.items():
            derived = mapping.derive({"S": user}, members)
            if derived is not None:
                final[derived["PK"]["S"], derived["SK"]["S"]] = derived
    # the sides' runs alternate, so that a busy machine slows them alike; the best run of
    # each side counts
    fwd = rep = rev = None
    for _ in range(repeat):
        fwd = _best(fwd, forward(route, stream, size, 1, ddb))
        if not merge_updates:  # the Replicator's writer never merges
            rep = _best(rep, replicated(route, stream, size, 1, final))
        rev = _best(rev, reverse(route, stream, size, 1, final, merge_updates))
    assert fwd is not None and rev is not None
    return Figure(route, records, fwd, rep, rev)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reverse", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--routes", default="identity,servers,memberships,memberships*", help="comma-separated"
    )
    args = parser.parse_args(argv)
    wanted = set(args.routes.split(","))
    print(f"{args.records} records over {args.keys} keys, batches of {args.batch}")
    head = f"{'route':<12} {'direction':<9} {'records/s/core':>15} {'req/1k records':>15}  detail"
    print(head)
    print("-" * len(head))
    for route, merge in [(r, False) for r in ROUTES] + [("memberships", True)]:
        if (route + "*" if merge else route) not in wanted:
            continue
        fig = measure(route, args.records, args.keys, args.batch, args.repeat, merge)
        if merge:
            route = "memberships*"  # merge_updates: UPDATEs sent as batched PUTs
        sides = [("forward", fig.forward), ("reverse", fig.replicated), ("writer", fig.writer)]
        for name, side in sides:
            if side is None:
                continue
            detail = ", ".join(f"{k} {v}" for k, v in sorted(side.calls.items()))
            if name != "forward":
                detail += (
                    f"; {fig.ratio(side):.2f}x forward; {side.changed} items changed, "
                    f"{fig.per_thousand_changed(side):,.1f} req/1k changed; "
                    f"{sum(side.calls.values())} requests vs bound {side.bound}"
                )
            print(
                f"{route:<12} {name:<9} {fig.rps(side):>15,.0f} "
                f"{fig.per_thousand(side):>15,.1f}  {detail}"
            )
    print(
        "reverse: through Replicator.apply (as production); writer: ReverseWriter.apply alone\n"
        "memberships*: merge_updates=True (each UPDATE sent as a PUT of the item read, batched;"
        " writer only: the Replicator never merges)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
