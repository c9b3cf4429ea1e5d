"""The local runner's settings (how it reads) and its clock (the cursors never read one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dualwrite.backoff import Backoff
from dualwrite.errors import ConfigError
from stream_replicator.cursor import CursorRules, Now


@dataclass(frozen=True)
class RunnerSettings:
    """How the runner reads. Intervals in seconds."""

    #: records per GetRecords and batch (like Lambda's BatchSize; GetRecords takes 1..1000)
    batch_size: int = 100
    #: pause between reads of an idle stream
    poll_interval: float = 1.0
    #: how often a held route's phase and every route's direction are read again (and how
    #: long "backfilled" and a direction are trusted): a backfill or a switch is picked up
    #: within this long
    phase_interval: float = 5.0
    shard_refresh_interval: float = 30.0
    checkpoint_interval: float = CursorRules.checkpoint_interval
    metrics_interval: float = 60.0
    idle_polls: int = CursorRules.idle_polls
    max_retries: int = CursorRules.max_retries
    publish_metrics: bool = True
    retry_backoff: Backoff = field(default_factory=lambda: Backoff(base=0.2, cap=10.0))

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 1000:
            raise ConfigError("batch size must be between 1 and 1000 (GetRecords' limit)")

    def rules(self) -> CursorRules:
        return CursorRules(max(1, self.idle_polls), self.max_retries, self.checkpoint_interval)


@dataclass(frozen=True)
class Clock:
    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic

    def now(self) -> Now:
        return Now(self.wall(), self.mono())
