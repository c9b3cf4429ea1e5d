"""What cutover, rollback and decommission work with: the migration, the AWS clients, the
Lambda functions, the control table (None before `prepare`), the clock and the sleeper the
watch after the switch waits with (tests move both)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration
from dualwrite.control import ControlStore
from dualwrite.cutover.functions import LambdaFunctions
from dualwrite.cutover.journal import Journal


@dataclass(frozen=True)
class CutoverContext:
    migration: Migration
    clients: Clients
    functions: LambdaFunctions
    store: ControlStore | None
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], None] = field(default=time.sleep)

    @classmethod
    def open(
        cls,
        migration: Migration,
        clients: Clients,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> CutoverContext:
        """The control table with our clock, or None when it does not exist yet."""
        name = migration.control_table
        store = (
            ControlStore(clients.dynamodb, name, clock=clock)
            if tables.describe(clients.dynamodb, name) is not None
            else None
        )
        return cls(migration, clients, LambdaFunctions(clients.lambda_), store, clock, sleep)

    @property
    def journal(self) -> Journal | None:
        return Journal(self.store) if self.store is not None else None
