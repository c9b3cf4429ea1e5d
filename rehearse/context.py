"""What the rehearsal's steps share: the private ministack's endpoint, the environment every
command runs with, the work directory, clients, and what earlier steps found."""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.cli.demo_reverse import AppWrite
from dualwrite.config import Migration, load_migration
from dualwrite.traffic import TrafficStats
from dualwrite.wire import Item
from rehearse.adapt import Adaptation
from rehearse.steps import StepFailed
from rehearse.tools import ROOT, Finished, run

REGION = "us-east-1"
STACK = "dualwrite"
CONFIG = "migrations/coretable.yaml"
#: the rehearsal's copy of the migration file changes only these (DESIGN.md section 8): a
#: drain after a switch waits T+O plus max_lag_seconds on the Lambda path, and the defaults
#: (the longest Timeout of the re-pointed functions; 60 s) would make it minutes
CUTOVER_SETTINGS = {"overlap_seconds": 2, "max_lag_seconds": 10}
#: the machine's emulator workers load wheels of its own platform (an arm64 layer cannot)
MACHINE_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}


@dataclass(frozen=True)
class Options:
    servers: int = 60
    memberships: int = 180
    routes: tuple[str, ...] = ("servers", "memberships")
    traffic_rate: float = 20.0
    #: live writes after the backfills ended: only the deployed replicator can apply them
    after_backfill_s: float = 5.0
    total_segments: int = 2
    deadline_s: float = 240.0


@dataclass
class Rehearsal:
    options: Options
    endpoint: str
    workdir: Path
    sam: Path
    migration: Migration = field(init=False)
    clients: Clients = field(init=False)
    stream_arns: dict[str, str] = field(default_factory=dict)  # route -> stream ARN
    core_stream_arn: str = ""  # CoreTable's: the reverse mapping reads it
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    adaptations: list[Adaptation] = field(default_factory=list)
    traffic: TrafficStats = field(default_factory=TrafficStats)
    stop_traffic: threading.Event = field(default_factory=threading.Event)
    traffic_thread: threading.Thread | None = None
    writes_before_backfill_end: int = 0
    writes: dict[str, int] = field(default_factory=dict)  # source table -> live writes
    writes_at_backfill_end: dict[str, int] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)  # the last `reconcile --json`
    reverse_since: float = 0.0  # T minus the margin of the cutover's switch to reverse
    core_writes: list[AppWrite] = field(default_factory=list)  # to CoreTable after cutover
    foreign: dict[str, int] = field(default_factory=dict)  # route -> foreign writes made
    #: server id -> its last item written to ServersTable after the rollback (None: deleted)
    old_writes: dict[str, Item | None] = field(default_factory=dict)
    #: a line of progress while a step waits (the session prints it)
    say: Callable[[str], None] = field(default=lambda _line: None)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        document = yaml.safe_load((ROOT / CONFIG).read_text(encoding="utf-8"))
        document.setdefault("cutover", {}).update(CUTOVER_SETTINGS)
        self.config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.migration = load_migration(self.config)
        self.clients = Clients(
            AwsSettings(endpoint_url=self.endpoint, region=REGION, emulator_credentials=True)
        )

    @property
    def config(self) -> Path:
        """The rehearsal's copy of migrations/coretable.yaml (CUTOVER_SETTINGS)."""
        return self.workdir / "coretable.yaml"

    @property
    def log(self) -> Path:
        return self.workdir / "commands.log"

    @property
    def build_dir(self) -> Path:
        return self.workdir / "build"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every command: AWS_ENDPOINT_URL at the private ministack."""
        keep = ("PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            SAM_CLI_TELEMETRY="0",
            NO_COLOR="1",
            COLUMNS="200",
        )
        env.update(extra)
        return env

    def run(
        self, command: list[str], timeout: float = 900.0, cwd: Path = ROOT, **extra: str
    ) -> Finished:
        return run(command, env=self.env(**extra), cwd=cwd, log=self.log, timeout=timeout)

    def dualwrite(self, *args: str, ok: tuple[int, ...] = (0,)) -> Finished:
        """`dualwrite --config migrations/coretable.yaml ARGS`, as the README writes it (the
        rehearsal's copy of that file)."""
        done = self.run([sys.executable, "-m", "dualwrite", "--config", str(self.config), *args])
        if done.returncode not in ok:
            raise StepFailed(
                f"dualwrite {' '.join(args)} exited {done.returncode} (see {self.log})"
            )
        return done

    def dualwrite_json(self, *args: str, ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
        done = self.dualwrite(*args, "--json", ok=ok)
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def host_platform(self) -> str:
        machine = platform.machine()
        if machine not in MACHINE_PLATFORMS:
            raise StepFailed(f"no Lambda wheel platform known for this machine ({machine})")
        return MACHINE_PLATFORMS[machine]

    def wait_for(self, check: Callable[[], Any], what: str, deadline_s: float = 0.0) -> Any:
        """Poll check() until it returns something truthy; StepFailed after the deadline
        (deadline_s, else the options')."""
        deadline = time.monotonic() + (deadline_s or self.options.deadline_s)
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"timed out after {deadline_s or self.options.deadline_s:.0f}s: {what}"
                )
            time.sleep(0.5)
