"""The routes to check, resolved against the live tables (DescribeTable)."""

from __future__ import annotations

from dataclasses import dataclass

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.cognito import user_pool
from dualwrite.config import Migration
from dualwrite.errors import ConfigError
from dualwrite.mapping import checked_mapping
from dualwrite.mapping.base import Mapping
from reconciler.expect import NameFor


@dataclass(frozen=True)
class RouteSpec:
    """Everything the reconciler needs to know about one route."""

    name: str
    source: str
    target: str
    mapping: Mapping
    target_names: tuple[str, ...]
    name_for: NameFor | None = None
    #: DescribeTable's approximate item counts (progress bars only)
    approx_source_items: int = 0
    approx_target_items: int = 0

    @property
    def source_names(self) -> tuple[str, ...]:
        return self.mapping.source_key.names


def resolve_routes(
    migration: Migration, clients: Clients, names: list[str] | None = None
) -> list[RouteSpec]:
    """The routes to check, with their key schemas; ConfigError (exit 2) before any scan."""
    selected = (
        list(migration.routes) if not names else [migration.route(n) for n in dict.fromkeys(names)]
    )
    ddb = clients.dynamodb
    pool = user_pool(clients, migration.cognito_user_pool_id)
    name_for: NameFor | None = pool.check().name_for if pool is not None else None
    out: list[RouteSpec] = []
    for route in selected:
        source = tables.describe(ddb, route.source)
        if source is None:
            raise ConfigError(f"route {route.name}: source table {route.source} does not exist")
        target = tables.describe(ddb, route.target)
        if target is None:
            raise ConfigError(
                f"route {route.name}: target table {route.target} does not exist "
                "(run `dualwrite prepare` first)"
            )
        target_key = tables.key_schema_of(target)
        mapping = checked_mapping(
            route.name, route.mapping, tables.key_schema_of(source), target_key
        )
        if not mapping.fits_key(target_key):
            raise ConfigError(
                f"route {route.name}: target {route.target} is keyed by "
                f"{target_key.describe()}, the mapping needs {mapping.target_key.describe()}"
            )
        out.append(
            RouteSpec(
                name=route.name,
                source=route.source,
                target=route.target,
                mapping=mapping,
                target_names=target_key.names,
                name_for=name_for if mapping.group_attr else None,
                approx_source_items=int(source.get("ItemCount", 0) or 0),
                approx_target_items=int(target.get("ItemCount", 0) or 0),
            )
        )
    return out
