"""`plan` and `prepare`: check everything first, then make the changes, idempotently.

Nothing is written until every route has been checked: a missing table, a stream of the wrong
view type, a mapping that does not fit its source or a target with an incompatible key schema
is a ConfigError (exit 2) before any change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, Target
from dualwrite.control import ControlStore, ControlTable, control_table_definition
from dualwrite.cutover.facts import describe_routes, renames_of, table_pairs
from dualwrite.cutover.functions import LambdaFunctions, candidates, plan_changes
from dualwrite.cutover.references import (
    LAMBDA_FUNCTION,
    Discovery,
    Skipped,
    discover_references,
)
from dualwrite.errors import AwsError, ConfigError
from dualwrite.jsondoc import JsonObject
from dualwrite.mapping import checked_mapping, is_identity, key_space_clash
from dualwrite.mapping.base import KeySchema

BACKUP_PK = "BACKUP"
#: the control table's key and TTL attribute (control_table_definition)
CONTROL_KEY = KeySchema((("pk", "S"), ("sk", "S")))
CONTROL_TTL = "expires_at"


@dataclass(frozen=True)
class BackupRecord:
    """BACKUP / <table>: the on-demand backup prepare took before changing the source."""

    table: str
    backup_arn: str
    reason: str = "prepare"

    def to_json(self) -> JsonObject:
        return {"backup_arn": self.backup_arn, "reason": self.reason}

    @classmethod
    def from_json(cls, table: str, data: Mapping[str, Any]) -> BackupRecord:
        return cls(table, str(data.get("backup_arn") or ""), str(data.get("reason") or ""))


def backups(store: ControlTable) -> list[BackupRecord]:
    return [BackupRecord.from_json(r.sk, r.data) for r in store.query(BACKUP_PK)]


def save_backup(store: ControlTable, record: BackupRecord) -> None:
    store.put(BACKUP_PK, record.table, record.to_json())


@dataclass(frozen=True)
class Action:
    table: str
    action: str
    needed: bool
    detail: str

    def to_json(self) -> JsonObject:
        return asdict(self)


@dataclass(frozen=True)
class RoutePlan:
    route: str
    source: str
    target: str
    mapping: str
    source_key: str
    approx_items: int
    stream_view: str | None

    def to_json(self) -> JsonObject:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """What prepare would do; analyze fills its lists, nothing replaces them."""

    routes: list[RoutePlan] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    # internal: what apply needs
    target_defs: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    target_ttl: dict[str, str] = field(default_factory=dict, repr=False)
    #: TTL attribute of tables that exist (the control table, a cloned target)
    existing_ttl: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.needed]

    def to_json(self) -> JsonObject:
        return {
            "routes": [r.to_json() for r in self.routes],
            "actions": [a.to_json() for a in self.actions],
            "changes": len(self.changes),
        }


def _same_key(a: KeySchema, b: KeySchema) -> bool:
    return a.attributes == b.attributes


def analyze(migration: Migration, clients: Clients, *, backup: bool = True) -> Plan:
    """What prepare would do. Reads only; raises ConfigError on anything that cannot work."""
    ddb = clients.dynamodb
    reverse = migration.cutover.reverse
    plan = Plan()
    control = tables.describe(ddb, migration.control_table)
    backups_taken: set[str] = set()
    if control is not None:
        have = tables.key_schema_of(control)
        if not _same_key(have, CONTROL_KEY):
            raise ConfigError(
                f"control_table: {migration.control_table} exists with key {have.describe()}, "
                f"not a dualwrite control table ({CONTROL_KEY.describe()}): name another table"
            )
        store = ControlStore(ddb, migration.control_table)
        backups_taken = {b.table for b in backups(store)}
    plan.actions.append(
        Action(
            migration.control_table,
            "create control table",
            control is None,
            "exists" if control else "checkpoints, phases, quarantine, cutover journal",
        )
    )
    if control is not None:  # a run stopped between CreateTable and UpdateTimeToLive
        _finish_ttl(plan, ddb, migration.control_table, CONTROL_TTL)
    planned_targets: dict[str, KeySchema] = {}
    sharing: dict[str, list[tuple[str, Any, Any]]] = {}  # target -> routes' mappings on it
    for route in migration.routes:
        src = tables.describe(ddb, route.source)
        if src is None:
            raise ConfigError(f"route {route.name}: source table {route.source} does not exist")
        source_key = tables.key_schema_of(src)
        tgt = tables.describe(ddb, route.target)
        declared = migration.targets.get(route.target)
        declared_key = KeySchema(tuple(declared.key.items())) if declared is not None else None
        # the target's key as it is, is declared, or an earlier route plans it: it orders a
        # declarative `key:` (partition key first)
        known_key = (
            tables.key_schema_or_none(tgt) or declared_key or planned_targets.get(route.target)
        )
        mapping = checked_mapping(route.name, route.mapping, source_key, known_key)
        on_target = sharing.setdefault(route.target, [])
        problem = key_space_clash(route.mapping, mapping, on_target)
        if problem:
            raise ConfigError(f"route {route.name}: {problem}")
        on_target.append((route.name, route.mapping, mapping))
        view = tables.stream_view(src)
        if view is not None and view != tables.STREAM_VIEW:
            raise ConfigError(
                f"route {route.name}: the stream on {route.source} has view type {view}; "
                f"dualwrite needs {tables.STREAM_VIEW}. Disable it (aws dynamodb update-table "
                f"--table-name {route.source} --stream-specification StreamEnabled=false) "
                "and run prepare again"
            )
        plan.routes.append(
            RoutePlan(
                route.name,
                route.source,
                route.target,
                str(route.mapping),
                source_key.describe(),
                int(src.get("ItemCount", 0)),
                view,
            )
        )
        pitr = tables.pitr_enabled(ddb, route.source)
        source_changes = view is None or not pitr
        # every source gets one backup taken by dualwrite: also the source an earlier
        # `prepare --no-backup` already changed (else a plain prepare never takes it)
        taken = route.source in backups_taken
        if not backup:
            backup_detail = "skipped (--no-backup)"
        elif taken:
            backup_detail = "taken by an earlier prepare"
        elif source_changes:
            backup_detail = "before the first change to the source"
        else:
            backup_detail = "none taken by dualwrite yet"
        plan.actions.append(
            Action(route.source, "on-demand backup", backup and not taken, backup_detail)
        )
        plan.actions.append(
            Action(
                route.source,
                f"enable stream ({tables.STREAM_VIEW})",
                view is None,
                "already on" if view else "before any copying",
            )
        )
        plan.actions.append(
            Action(
                route.source,
                "enable point-in-time recovery",
                not pitr,
                "already on" if pitr else "",
            )
        )
        # the target
        wanted = mapping.target_key
        if route.target in planned_targets:
            if not mapping.fits_key(planned_targets[route.target]):
                raise ConfigError(
                    f"route {route.name}: target {route.target} is shared with a route whose "
                    "mapping needs another key schema"
                )
            continue
        planned_targets[route.target] = wanted
        if declared_key is not None and not mapping.fits_key(declared_key):
            raise ConfigError(
                f"targets.{route.target}.key: mapping {route.mapping} writes "
                f"{wanted.describe()}, but the file declares {declared_key.describe()}"
            )
        if tgt is not None:
            have = tables.key_schema_of(tgt)
            if not mapping.fits_key(have):
                raise ConfigError(
                    f"route {route.name}: target table {route.target} exists with key "
                    f"{have.describe()}, but mapping {route.mapping} writes {wanted.describe()}"
                )
            if declared is not None:
                _declared_indexes(route.target, declared, tgt)
            plan.actions.append(Action(route.target, "create target", False, "exists"))
            if reverse:
                plan.actions.append(_target_stream(route.name, route.target, tgt))
            # what a run stopped after CreateTable left undone (prepare is idempotent)
            if declared is None and is_identity(route.mapping):
                ttl = tables.ttl_attribute(ddb, route.source)
                if ttl:
                    _finish_ttl(plan, ddb, route.target, ttl)
            pitr = tables.pitr_enabled(ddb, route.target)
            plan.actions.append(
                Action(
                    route.target,
                    "enable point-in-time recovery",
                    not pitr,
                    "already on" if pitr else "",
                )
            )
            continue
        if declared is not None:
            definition = tables.declared_definition(route.target, declared)
            if reverse:  # reverse replication reads the target's stream after cutover
                definition["StreamSpecification"] = {
                    "StreamEnabled": True,
                    "StreamViewType": tables.STREAM_VIEW,
                }
            plan.target_defs[route.target] = definition
            plan.actions.append(
                Action(
                    route.target,
                    "create target",
                    True,
                    f"declared: key {wanted.describe()}, "
                    f"{len(declared.indexes)} index(es), {declared.billing_mode}",
                )
            )
        elif is_identity(route.mapping):
            tags = tables.tags_of(ddb, src["TableArn"])
            definition = tables.clone_definition(route.target, src, tags)
            # the clone carries the stream dualwrite is about to turn on at the source (and
            # reverse replication reads it after cutover)
            definition["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": tables.STREAM_VIEW,
            }
            plan.target_defs[route.target] = definition
            ttl = tables.ttl_attribute(ddb, route.source)
            if ttl:
                plan.target_ttl[route.target] = ttl
            n_gsi = len(definition.get("GlobalSecondaryIndexes", []))
            n_lsi = len(definition.get("LocalSecondaryIndexes", []))
            plan.actions.append(
                Action(
                    route.target,
                    "clone target",
                    True,
                    f"from {route.source}: {n_gsi} GSI, {n_lsi} LSI, "
                    f"{definition['BillingMode']}, {len(tags)} tag(s)"
                    + (f", TTL on {ttl}" if ttl else ""),
                )
            )
        else:
            raise ConfigError(
                f"route {route.name}: target {route.target} does not exist and is not declared "
                f"under targets: (only identity routes clone their source)"
            )
        plan.actions.append(Action(route.target, "enable point-in-time recovery", True, ""))
    return plan


def _finish_ttl(plan: Plan, ddb: Any, table: str, attribute: str) -> None:
    """TTL on `attribute` for a table that exists: planned when it is off."""
    have = tables.ttl_attribute(ddb, table)
    if have is not None and have != attribute:
        raise ConfigError(
            f"{table} has TTL on {have}, but dualwrite needs it on {attribute} "
            "(a table has one TTL attribute)"
        )
    plan.existing_ttl.setdefault(table, attribute)
    plan.actions.append(
        Action(table, f"enable TTL ({attribute})", have is None, "already on" if have else "")
    )


def _declared_indexes(target: str, declared: Target, desc: Any) -> None:
    """An existing target must hold the indexes the file declares (the application's
    queries need them after cutover; prepare does not rebuild a table that has data)."""
    have = {
        g["IndexName"]: tuple((k["AttributeName"], k["KeyType"]) for k in g.get("KeySchema", []))
        for g in desc.get("GlobalSecondaryIndexes", [])
    }
    for index in declared.indexes:
        want = tuple((attr, "HASH" if i == 0 else "RANGE") for i, attr in enumerate(index.key))
        if have.get(index.name) != want:
            found = "is missing" if index.name not in have else "has another key"
            raise ConfigError(
                f"targets.{target}.indexes: {index.name} {found} on the existing table "
                f"{target}: add it (aws dynamodb update-table --global-secondary-index-updates) "
                "or delete the table and run prepare again"
            )


def _target_stream(route: str, target: str, desc: Any) -> Action:
    """An existing target needs the stream reverse replication reads after cutover."""
    view = tables.stream_view(desc)
    if view is not None and view != tables.STREAM_VIEW:
        raise ConfigError(
            f"route {route}: the stream on target {target} has view type {view}; reverse "
            f"replication needs {tables.STREAM_VIEW} (or set cutover.reverse: false)"
        )
    return Action(
        target,
        f"enable target stream ({tables.STREAM_VIEW})",
        view is None,
        "already on" if view else "read by reverse replication after cutover",
    )


def references(migration: Migration, clients: Clients) -> Discovery:
    """Every place outside the re-pointed functions that names an old table (DESIGN.md
    section 10), for `plan`; read-only, a kind that cannot be read is skipped. The
    re-pointed functions are the listed ones and, with `discover: true`, every function the
    cutover would re-point (cutover --dry-run's list: they are no writer left behind)."""
    routes = describe_routes(migration, clients)
    repointed = set(migration.cutover.functions)
    unknown: list[Skipped] = []
    if migration.cutover.discover:
        try:
            found = candidates(LambdaFunctions(clients.lambda_), (), discover=True)
        except (AwsError, ConfigError) as exc:  # e.g. ListFunctions denied: plan goes on
            unknown.append(
                Skipped(LAMBDA_FUNCTION, f"which functions the cutover re-points: {exc}")
            )
        else:
            repointed |= {p.function for p in plan_changes(found, renames_of(routes))}
    found_refs = discover_references(clients, table_pairs(routes), repointed=repointed)
    return replace(found_refs, skipped=(*unknown, *found_refs.skipped))


def apply(
    migration: Migration,
    clients: Clients,
    plan: Plan,
    *,
    backup: bool = True,
    say: Callable[[str], None] = lambda _m: None,
    clock: Callable[[], float] = time.time,
) -> list[Action]:
    """Make the changes of an analyzed plan; returns the actions done."""
    ddb = clients.dynamodb
    done: list[Action] = []
    needed = {(a.table, a.action) for a in plan.changes}
    if (migration.control_table, "create control table") in needed:
        say(f"creating control table {migration.control_table}")
        tables.create_table(ddb, control_table_definition(migration.control_table))
        tables.wait_active(ddb, migration.control_table)
        tables.enable_ttl(ddb, migration.control_table, CONTROL_TTL)
        done.append(Action(migration.control_table, "create control table", True, "created"))
    store = ControlStore(ddb, migration.control_table, clock=clock)
    for route in migration.routes:
        src = route.source
        if backup and (src, "on-demand backup") in needed:
            say(f"backing up {src} (on-demand backup, waiting until AVAILABLE)")
            label = f"dualwrite-{src}-{int(clock())}"[:255]
            arn = tables.backup(ddb, src, label)
            save_backup(store, BackupRecord(src, arn))
            done.append(Action(src, "on-demand backup", True, arn))
        if (src, f"enable stream ({tables.STREAM_VIEW})") in needed:
            say(f"enabling the stream on {src}")
            tables.enable_stream(ddb, src)
            tables.wait_active(ddb, src)
            done.append(Action(src, "enable stream", True, tables.STREAM_VIEW))
        if (src, "enable point-in-time recovery") in needed:
            say(f"enabling point-in-time recovery on {src}")
            tables.enable_pitr(ddb, src)
            done.append(Action(src, "enable point-in-time recovery", True, ""))
    for target in dict.fromkeys(r.target for r in migration.routes):
        if (target, f"enable target stream ({tables.STREAM_VIEW})") in needed:
            say(f"enabling the stream on {target} (reverse replication reads it after cutover)")
            tables.enable_stream(ddb, target)
            tables.wait_active(ddb, target)
            done.append(Action(target, "enable target stream", True, tables.STREAM_VIEW))
    for name, attribute in plan.existing_ttl.items():
        if (name, f"enable TTL ({attribute})") in needed:
            say(f"enabling TTL on {name} ({attribute})")
            tables.enable_ttl(ddb, name, attribute)
            done.append(Action(name, "enable TTL", True, attribute))
    for target in dict.fromkeys(r.target for r in migration.routes):
        if target not in plan.target_defs and (target, "enable point-in-time recovery") in needed:
            say(f"enabling point-in-time recovery on {target}")
            tables.enable_pitr(ddb, target)
            done.append(Action(target, "enable point-in-time recovery", True, ""))
    for name, definition in plan.target_defs.items():
        say(f"creating target {name}")
        tables.create_table(ddb, definition)
    for name in plan.target_defs:
        tables.wait_active(ddb, name)
        if name in plan.target_ttl:
            tables.enable_ttl(ddb, name, plan.target_ttl[name])
        tables.enable_pitr(ddb, name)
        done.append(Action(name, "create target", True, "ACTIVE"))
    return done
