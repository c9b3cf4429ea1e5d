"""What a Lambda container keeps between invocations, built once from its environment.

    rt = runtime or shared()      # in each handler; tests pass a Runtime of their own

The three handlers (replicator, backfill worker, reconciler) read the environment here and
nowhere else, at the first invocation (never at import):

- `DUALWRITE_CONFIG`: path of the migration file packaged with the function (required); a
  relative path is read from `LAMBDA_TASK_ROOT` (the function's code directory: /var/task
  in AWS, another directory on an emulator), so one package runs anywhere;
- `DUALWRITE_CONTROL_TABLE`: overrides the migration file's control table;
- `AWS_REGION` / `AWS_DEFAULT_REGION`: the region (boto3's own `AWS_ENDPOINT_URL` points the
  clients at an emulator);
- `DUALWRITE_BACKFILL_MARGIN_MS`: time a backfill worker keeps back before its invocation ends;
- `DUALWRITE_RECONCILE_MARGIN_MS`: the same for a reconcile state machine's segment worker.

boto3 clients are made at their first use (dualwrite.aws.clients.Clients), the control store
too; a handler's own per-container parts (the replicator, a route's checks) are built once
with `part()`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import Migration, load_migration
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError

T = TypeVar("T")

#: what Lambda hands a handler and what the handler returns (AWS's shapes, the JSON edge)
LambdaEvent = dict[str, Any]
LambdaResponse = dict[str, Any]

DEFAULT_BACKFILL_MARGIN_MS = 30_000
#: a reconcile unit re-reads its last candidates and saves its digests after it stops
DEFAULT_RECONCILE_MARGIN_MS = 60_000


def _margin(env: Mapping[str, str], name: str, default: int) -> int:
    margin = env.get(name) or str(default)
    if not margin.isdigit():
        raise ConfigError(f"{name} must be milliseconds, got {margin!r}")
    return int(margin)


@dataclass(frozen=True)
class RuntimeSettings:
    config_path: str
    control_table: str | None = None
    region: str | None = None
    backfill_margin_ms: int = DEFAULT_BACKFILL_MARGIN_MS
    reconcile_margin_ms: int = DEFAULT_RECONCILE_MARGIN_MS
    #: the replicator function (the stack names it): the only one whose event source
    #: mappings a backfill enables; None: decided from the functions' handlers
    replicator_function: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RuntimeSettings:
        path = env.get("DUALWRITE_CONFIG")
        if not path:
            raise ConfigError(
                "DUALWRITE_CONFIG is not set: it must name the migration file packaged with "
                "the function (e.g. DUALWRITE_CONFIG=migrations/coretable.yaml)"
            )
        root = env.get("LAMBDA_TASK_ROOT")
        if root and not os.path.isabs(path):
            path = os.path.join(root, path)
        return cls(
            config_path=path,
            control_table=env.get("DUALWRITE_CONTROL_TABLE") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            backfill_margin_ms=_margin(
                env, "DUALWRITE_BACKFILL_MARGIN_MS", DEFAULT_BACKFILL_MARGIN_MS
            ),
            reconcile_margin_ms=_margin(
                env, "DUALWRITE_RECONCILE_MARGIN_MS", DEFAULT_RECONCILE_MARGIN_MS
            ),
            replicator_function=env.get("DUALWRITE_REPLICATOR_FUNCTION") or None,
        )


@dataclass(frozen=True)
class Runtime:
    """The migration, the clients and the control store of one container."""

    migration: Migration
    clients: Clients
    #: the control table's name; None: the migration file's
    control_table: str | None = None
    backfill_margin_ms: int = DEFAULT_BACKFILL_MARGIN_MS
    reconcile_margin_ms: int = DEFAULT_RECONCILE_MARGIN_MS
    replicator_function: str | None = None
    _parts: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Runtime:
        settings = RuntimeSettings.from_env(os.environ if env is None else env)
        return cls(
            migration=load_migration(settings.config_path),
            clients=Clients(AwsSettings(region=settings.region)),
            control_table=settings.control_table,
            backfill_margin_ms=settings.backfill_margin_ms,
            reconcile_margin_ms=settings.reconcile_margin_ms,
            replicator_function=settings.replicator_function,
        )

    @classmethod
    def of(cls, migration: Migration, clients: Clients, store: ControlStore) -> Runtime:
        """A runtime around an existing store (tests, benchmarks)."""
        rt = cls(migration, clients, control_table=store.table)
        rt._parts["store"] = store
        return rt

    @property
    def store(self) -> ControlStore:
        return self.part(
            "store",
            lambda: ControlStore(
                self.clients.dynamodb, self.control_table or self.migration.control_table
            ),
        )

    def part(self, name: str, build: Callable[[], T]) -> T:
        """A per-container part, built at its first use."""
        if name not in self._parts:
            self._parts[name] = build()
        return cast(T, self._parts[name])


#: what a runtime is built from: a container's environment does not change, a test's may
ENV = (
    "DUALWRITE_CONFIG",
    "DUALWRITE_CONTROL_TABLE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "DUALWRITE_BACKFILL_MARGIN_MS",
    "DUALWRITE_RECONCILE_MARGIN_MS",
    "DUALWRITE_REPLICATOR_FUNCTION",
    # a relative DUALWRITE_CONFIG is read from here (the working directory need not be it)
    "LAMBDA_TASK_ROOT",
)


def shared() -> Runtime:
    """This container's runtime, from its environment at the first invocation (an error is
    not remembered: the next invocation tries again)."""
    return _built(tuple(os.environ.get(name) for name in ENV))


@functools.lru_cache(maxsize=1)
def _built(values: tuple[str | None, ...]) -> Runtime:
    return Runtime.from_env({k: v for k, v in zip(ENV, values, strict=True) if v is not None})
