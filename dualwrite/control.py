"""The control table: phases, checkpoints, quarantine, reconcile results, cutover journal.

Every control item is {pk, sk, data (JSON text), updated_at (epoch s)[, expires_at]}; the
layout of keys is the one place to read to know what dualwrite remembers:

    ROUTE#<route>        PHASE                        phase of the route (see Phase)
    ROUTE#<route>        SEGMENT#<total>#<segment>    backfill checkpoint of one scan segment
    ROUTE#<route>        RECONCILE                    latest reconcile result
    STREAM#<stream arn>  SHARD#<shard id>             replication checkpoint of one shard
    QUARANTINE           <route>#<iso time>#<id>      an item or record that cannot migrate
    QUARANTINE#SEEN      <route>#<seq>#<event id>     a stream record already quarantined
                                                      (redelivery files it once; expires)
    RECONCILE            RUN                          the scheduled reconciler's slice state
    BACKUP               <table>                      the on-demand backup prepare took
    RISK#RETENTION       <iso time>#<route>           a backfill run despite its retention
                                                      estimate (--accept-retention-risk)
    CUTOVER              <iso time>#<action>          cutover / rollback journal entries
    DECOMMISSION         <table>                      what decommission did
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.errors import ConditionFailedError

PK = "pk"
SK = "sk"


class Phase:
    """Route phases. The replicator applies a route's changes only from BACKFILLED on."""

    PENDING = "pending"
    BACKFILLING = "backfilling"
    BACKFILLED = "backfilled"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def control_table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


@dataclass(frozen=True)
class Record:
    pk: str
    sk: str
    data: dict[str, Any]
    updated_at: float


@dataclass
class ControlStore:
    """Reads and writes the control table. The clock is injected (tests move it)."""

    client: Any
    table: str
    clock: Callable[[], float] = time.time
    _ids: Callable[[], str] = field(default=lambda: uuid.uuid4().hex[:12])

    # --- generic --------------------------------------------------------------------------
    def put(
        self,
        pk: str,
        sk: str,
        data: dict[str, Any],
        *,
        expires_at: float | None = None,
        only_if_absent: bool = False,
    ) -> None:
        item: dict[str, Any] = {
            PK: {"S": pk},
            SK: {"S": sk},
            "data": {"S": json.dumps(data, separators=(",", ":"), default=str)},
            "updated_at": {"N": repr(self.clock())},
        }
        if expires_at is not None:
            item["expires_at"] = {"N": str(int(expires_at))}
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": item}
        if only_if_absent:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        with aws_call(f"PutItem {self.table}"):
            self.client.put_item(**kwargs)

    def get(self, pk: str, sk: str) -> Record | None:
        with aws_call(f"GetItem {self.table}"):
            response = self.client.get_item(
                TableName=self.table, Key={PK: {"S": pk}, SK: {"S": sk}}, ConsistentRead=True
            )
        item = response.get("Item")
        return _record(item) if item else None

    def delete(self, pk: str, sk: str) -> None:
        with aws_call(f"DeleteItem {self.table}"):
            self.client.delete_item(TableName=self.table, Key={PK: {"S": pk}, SK: {"S": sk}})

    def query(self, pk: str, prefix: str = "") -> Iterator[Record]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk"
            + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}}
            | ({":prefix": {"S": prefix}} if prefix else {}),
        }
        while True:
            with aws_call(f"Query {self.table}"):
                response = self.client.query(**kwargs)
            for item in response.get("Items", []):
                yield _record(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def now(self) -> float:
        return self.clock()

    # --- phases ---------------------------------------------------------------------------
    def phase(self, route: str) -> dict[str, Any]:
        rec = self.get(f"ROUTE#{route}", "PHASE")
        return rec.data if rec else {"phase": Phase.PENDING}

    def set_phase(self, route: str, phase: str, **extra: Any) -> dict[str, Any]:
        data = self.phase(route)
        data.update(extra)
        data["phase"] = phase
        data[f"{phase}_at"] = iso(self.clock())
        self.put(f"ROUTE#{route}", "PHASE", data)
        return data

    def is_backfilled(self, route: str) -> bool:
        return self.phase(route).get("phase") == Phase.BACKFILLED

    # --- backfill checkpoints -------------------------------------------------------------
    @staticmethod
    def segment_sk(segment: int, total: int) -> str:
        return f"SEGMENT#{total:05d}#{segment:05d}"

    def segment(self, route: str, segment: int, total: int) -> dict[str, Any] | None:
        rec = self.get(f"ROUTE#{route}", self.segment_sk(segment, total))
        return rec.data if rec else None

    def save_segment(self, route: str, segment: int, total: int, data: dict[str, Any]) -> None:
        self.put(f"ROUTE#{route}", self.segment_sk(segment, total), data)

    def segments(self, route: str) -> list[Record]:
        return list(self.query(f"ROUTE#{route}", "SEGMENT#"))

    def clear_segments(self, route: str) -> int:
        n = 0
        for rec in self.segments(route):
            self.delete(rec.pk, rec.sk)
            n += 1
        return n

    # --- stream checkpoints ---------------------------------------------------------------
    def shard(self, stream_arn: str, shard_id: str) -> dict[str, Any] | None:
        rec = self.get(f"STREAM#{stream_arn}", f"SHARD#{shard_id}")
        return rec.data if rec else None

    def save_shard(self, stream_arn: str, shard_id: str, data: dict[str, Any]) -> None:
        self.put(f"STREAM#{stream_arn}", f"SHARD#{shard_id}", data)

    def shards(self, stream_arn: str) -> list[Record]:
        return list(self.query(f"STREAM#{stream_arn}", "SHARD#"))

    # --- quarantine -----------------------------------------------------------------------
    def quarantine(self, route: str, reason: str, record: dict[str, Any], source: str = "") -> str:
        """Keep an item or stream record that cannot migrate, with its reason. Returns its id."""
        sk = f"{route}#{iso(self.clock())}#{self._ids()}"
        self.put(
            "QUARANTINE",
            sk,
            {
                "route": route,
                "reason": reason,
                "source": source,
                "record": record,
                "resolved": False,
                "at": iso(self.clock()),
            },
        )
        return sk

    def quarantined(
        self, route: str | None = None, *, unresolved_only: bool = True
    ) -> list[Record]:
        out = []
        for rec in self.query("QUARANTINE", f"{route}#" if route else ""):
            if unresolved_only and rec.data.get("resolved"):
                continue
            out.append(rec)
        return out

    def resolve_quarantine(self, sk: str, note: str) -> None:
        rec = self.get("QUARANTINE", sk)
        if rec is None:
            raise ConditionFailedError(f"no quarantine entry {sk!r}")
        data = dict(rec.data)
        data.update(resolved=True, resolved_at=iso(self.clock()), resolution=note)
        self.put("QUARANTINE", sk, data)

    # --- reconcile results ----------------------------------------------------------------
    def save_reconcile(self, route: str, result: dict[str, Any]) -> None:
        self.put(f"ROUTE#{route}", "RECONCILE", {**result, "at": self.clock()})

    def last_reconcile(self, route: str) -> dict[str, Any] | None:
        rec = self.get(f"ROUTE#{route}", "RECONCILE")
        return rec.data if rec else None


def _record(item: dict[str, Any]) -> Record:
    return Record(
        pk=item[PK]["S"],
        sk=item[SK]["S"],
        data=json.loads(item["data"]["S"]) if "data" in item else {},
        updated_at=float(item.get("updated_at", {}).get("N", "0")),
    )
