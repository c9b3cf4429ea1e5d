"""What the reverse-replication tests of cutover, rollback, status, decommission and repair
build on moto: an old and a new table with streams, a control table, a function to
re-point (Timeout 7 s: the overlap O), optionally a replicator function with a mapping on
the source stream (enabled) and one on the target stream (disabled: the reverse one, as
infra/template.yaml creates it), and a fake clock shared by the journal and the sleeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore, ShardCheckpoint, control_table_definition
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.switch import CutoverRequest
from tests.cutover_world import FakeClock, make_function
from tests.functional.test_cutover_facts import make_table

FORCED = CutoverRequest(force=True, reason="test: no reconcile here")
TIMEOUT_S = 7


@dataclass
class World:
    clients: Clients
    ctx: CutoverContext
    clock: FakeClock
    reverse_uuid: str | None

    @property
    def store(self) -> ControlStore:
        assert self.ctx.store is not None
        return self.ctx.store

    def now(self) -> float:
        return self.clock.now().timestamp()

    def stream(self, table: str) -> str:
        info = tables.info(self.clients.dynamodb, table)
        assert info is not None and info.stream_arn
        return info.stream_arn

    def mapping(self, uuid: str) -> dict[str, Any]:
        return dict(self.clients.lambda_.get_event_source_mapping(UUID=uuid))

    def _shards(self, table: str) -> list[tuple[str, str, list[dict[str, Any]]]]:
        """(stream, shard id, every record from the trim horizon) of the table's stream."""
        from dualwrite.aws.streams import list_shards
        from dualwrite.cutover import streams

        stream = self.stream(table)
        return [
            (
                stream,
                s["ShardId"],
                list(streams.records(self.clients.streams, stream, s["ShardId"])),
            )
            for s in list_shards(self.clients.streams, stream)
        ]

    def records(self, table: str) -> list[Any]:
        """Every record of the table's stream, as the replicator's Lambda receives them."""
        from stream_replicator.events import lambda_record

        return [
            lambda_record(r, stream, "us-east-1")
            for stream, _, records in self._shards(table)
            for r in records
        ]

    def replicator(self, phase_ttl: float = 0.0) -> Any:
        """The replicator's Lambda entry point (apply a batch), on the world's clock; the
        route backfilled."""
        from dualwrite.backoff import Backoff
        from dualwrite.control import Phase
        from stream_replicator.apply import Replicator

        self.store.set_phase("r", Phase.BACKFILLED)
        return Replicator(
            self.ctx.migration,
            self.clients,
            self.store,
            clock=self.now,
            phase_ttl=phase_ttl,
            backoff=Backoff(sleep=lambda _s: None),
        )

    def item(self, table: str, key: str) -> dict[str, Any] | None:
        got = self.clients.dynamodb.get_item(
            TableName=table, Key={"id": {"S": key}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = got.get("Item")
        return item

    def caught_up(self, table: str) -> None:
        """What the local runner leaves once it read the table's stream to its end."""
        for stream, shard, records in self._shards(table):
            last = records[-1]["dynamodb"]["SequenceNumber"] if records else None
            self.store.save_shard(ShardCheckpoint(stream, shard, "r", sequence_number=last))


def migration(mapping: str = "identity", **cutover: Any) -> Migration:
    return parse_migration(
        {
            "control_table": "ctl",
            "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": mapping}],
            "cutover": {"functions": ["api"], "watch_seconds": 0, **cutover},
        }
    )


def build(migration_: Migration | None = None, *, replicator: bool = True) -> World:
    c = Clients(AwsSettings(region="us-east-1"))
    make_table(c, "old-t")
    make_table(c, "new-t")
    tables.create_table(c.dynamodb, control_table_definition("ctl"))
    make_function(c, "api")
    c.lambda_.update_function_configuration(
        FunctionName="api", Timeout=TIMEOUT_S, Environment={"Variables": {"TABLE": "old-t"}}
    )
    uuid = None
    if replicator:
        make_function(c, "replicator")
        for table, enabled in (("old-t", True), ("new-t", False)):
            arn = c.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            made = c.lambda_.create_event_source_mapping(
                FunctionName="replicator",
                EventSourceArn=arn,
                StartingPosition="TRIM_HORIZON",
                Enabled=enabled,
            )
            if not enabled:
                uuid = made["UUID"]
    clock = FakeClock(t=datetime.now(UTC))  # moto's stream records carry the real time
    ctx = CutoverContext.open(
        migration_ or migration(), c, clock=lambda: clock.now().timestamp(), sleep=clock.sleep
    )
    return World(c, ctx, clock, uuid)
