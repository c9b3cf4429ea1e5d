"""A route ready to backfill: its tables checked, its mapping bound, and the shared state its
segment workers use (quarantine, Cognito names, capacity budget, progress)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from backfill.writer import retrying
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.cognito import CognitoNames, user_pool
from dualwrite.aws.dynamo import query_all
from dualwrite.backoff import Backoff, RateLimiter
from dualwrite.config import Migration, Route
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError
from dualwrite.jsondoc import JsonObject
from dualwrite.mapping import checked_mapping
from dualwrite.mapping.base import Mapping
from dualwrite.wire import AttributeValue, Item, key_id, to_lambda_json

SCAN_LIMIT = 1000
#: a quarantined item is kept whole in the control table when its JSON fits comfortably
#: under DynamoDB's 400 KB item limit; a bigger one is kept by key (the source still has it)
MAX_QUARANTINE_RECORD_CHARS = 300_000

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RouteSpec:
    """A route whose tables passed the checks backfill needs."""

    route: Route
    mapping: Mapping
    source_desc: dict[str, Any]
    target_desc: dict[str, Any]

    @property
    def name(self) -> str:
        return self.route.name

    @property
    def stream_arn(self) -> str | None:
        arn = self.source_desc.get("LatestStreamArn")
        return str(arn) if arn and tables.stream_view(self.source_desc) else None

    @property
    def stream_label(self) -> str | None:
        label = self.source_desc.get("LatestStreamLabel")
        return str(label) if label and tables.stream_view(self.source_desc) else None

    @property
    def approx_items(self) -> int:
        """DescribeTable ItemCount: approximate (AWS refreshes it about every 6 hours)."""
        return int(self.source_desc.get("ItemCount", 0) or 0)

    @property
    def size_bytes(self) -> int:
        return int(self.source_desc.get("TableSizeBytes", 0) or 0)


def check_control_table(clients: Clients, migration: Migration) -> None:
    if tables.describe(clients.dynamodb, migration.control_table) is None:
        raise ConfigError(
            f"control table {migration.control_table} does not exist: run `dualwrite prepare` first"
        )


def check_route(
    clients: Clients, migration: Migration, name: str, *, require_stream: bool = True
) -> RouteSpec:
    """Everything backfill needs of a route, or a ConfigError (exit 2) naming what is wrong."""
    route = migration.route(name)
    ddb = clients.dynamodb
    source = tables.describe(ddb, route.source)
    if source is None:
        raise ConfigError(f"route {name}: source table {route.source} does not exist")
    target = tables.describe(ddb, route.target)
    have = tables.key_schema_or_none(target)
    mapping = checked_mapping(name, route.mapping, tables.key_schema_of(source), have)
    view = tables.stream_view(source)
    if require_stream and view is None:
        raise ConfigError(
            f"route {name}: the stream on {route.source} is off, so changes made during the "
            "backfill would be lost: run `dualwrite prepare` first"
        )
    if require_stream and view != tables.STREAM_VIEW:
        raise ConfigError(
            f"route {name}: the stream on {route.source} has view type {view}; dualwrite "
            f"needs {tables.STREAM_VIEW}: run `dualwrite prepare`"
        )
    if target is None or have is None:
        raise ConfigError(
            f"route {name}: target table {route.target} does not exist: run `dualwrite prepare` "
            "first"
        )
    if not mapping.fits_key(have):
        raise ConfigError(
            f"route {name}: target {route.target} has key {have.describe()}, but mapping "
            f"{route.mapping} writes {mapping.target_key.describe()}"
        )
    return RouteSpec(route, mapping, source, target)


@dataclass
class RouteJob:
    """What every segment worker of one route shares. Thread-safe where it is shared."""

    spec: RouteSpec
    clients: Clients
    store: ControlStore
    #: put-if-absent writes (the route is BACKFILLED: the replicator owns the target)
    conditional: bool = False
    limiter: RateLimiter | None = None
    backoff: Backoff = field(default_factory=Backoff)
    names: CognitoNames | None = None
    on_progress: ProgressCallback | None = None
    scan_limit: int = SCAN_LIMIT
    attempts: int = 8
    _quarantined_keys: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def mapping(self) -> Mapping:
        return self.spec.mapping

    @property
    def source(self) -> str:
        return self.spec.route.source

    @property
    def target(self) -> str:
        return self.spec.route.target

    def thread_store(self) -> ControlStore:
        """The control store on this thread's own client."""
        return replace(self.store, client=self.clients.dynamodb)

    def load_quarantined(self) -> None:
        """Keys the backfill already quarantined (unresolved), so a redone page or a re-run
        counts them again without filing them twice."""
        names = self.mapping.source_key.names
        for entry in self.store.quarantined(self.name):
            if entry.source != "backfill":
                continue
            record = entry.record
            if all(n in record for n in names):
                self._quarantined_keys.add(key_id({n: record[n] for n in names}))

    def quarantine(self, store: ControlStore, item: Item, reason: str) -> None:
        names = self.mapping.source_key.names
        key = {n: item[n] for n in names if n in item}
        kid = key_id(key) if key else key_id({"item": {"S": json.dumps(to_lambda_json(item))}})
        with self._lock:
            if kid in self._quarantined_keys:
                return
            self._quarantined_keys.add(kid)
        record: JsonObject = to_lambda_json(item)
        if len(json.dumps(record, separators=(",", ":"))) > MAX_QUARANTINE_RECORD_CHARS:
            record = {
                **to_lambda_json(key),
                "__omitted__": "the item is too large to keep in the control table; "
                "read it from the source by this key",
            }
        store.quarantine(self.name, reason, record=record, source="backfill")

    def name_for(self, group: AttributeValue) -> str | None:
        return self.names.name_for(group) if self.names is not None else None

    def fetch_members(self, group: AttributeValue, has_time: Callable[[], bool]) -> list[Item]:
        """All source items of a group, strongly consistent (a group cut by a resume)."""
        attr = self.mapping.group_attr
        assert attr is not None
        client = self.clients.dynamodb
        members: list[Item] = retrying(
            lambda: query_all(client, self.source, attr, group, consistent=True),
            backoff=self.backoff,
            attempts=self.attempts,
            has_time=has_time,
        )
        return members

    def progress(self, items: int) -> None:
        if self.on_progress is not None:
            self.on_progress(self.name, items, self.spec.approx_items)


def cognito_names(clients: Clients, migration: Migration) -> CognitoNames | None:
    return user_pool(clients, migration.cognito_user_pool_id)
