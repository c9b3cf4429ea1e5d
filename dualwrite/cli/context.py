"""What every command shares: global options, the migration file, clients, consoles.

The environment is read here, once, at the entry point.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.console import Console

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import Migration, load_migration
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError


@dataclass
class AppContext:
    config_path: Path
    endpoint_url: str | None
    region: str | None
    has_credentials: bool = False
    #: human output; progress and notes go to stderr so stdout stays one JSON object
    out: Console = field(default_factory=lambda: console(stderr=False))
    err: Console = field(default_factory=lambda: console(stderr=True))

    @classmethod
    def from_options(cls, config: Path, endpoint_url: str | None, region: str | None) -> AppContext:
        env = os.environ
        return cls(
            config_path=config,
            endpoint_url=endpoint_url or None,
            region=region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            has_credentials=bool(env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE")),
        )

    @cached_property
    def migration(self) -> Migration:
        return load_migration(self.config_path)

    @cached_property
    def settings(self) -> AwsSettings:
        if self.endpoint_url is not None:
            check_endpoint(self.endpoint_url)
        return AwsSettings(
            endpoint_url=self.endpoint_url,
            region=self.region,
            emulator_credentials=bool(self.endpoint_url) and not self.has_credentials,
        )

    @cached_property
    def clients(self) -> Clients:
        return Clients(self.settings)

    @cached_property
    def store(self) -> ControlStore:
        return ControlStore(self.clients.dynamodb, self.migration.control_table)

    @cached_property
    def control_exists(self) -> bool:
        """Whether the control table exists (it does from `prepare` on)."""
        from dualwrite.aws import tables

        return tables.describe(self.clients.dynamodb, self.migration.control_table) is not None

    def no_control_note(self) -> str:
        return (
            f"control table {self.migration.control_table} does not exist yet (`dualwrite "
            "prepare` makes it): nothing is recorded"
        )

    @property
    def interactive(self) -> bool:
        return self.err.is_terminal

    def say(self, message: str) -> None:
        """A progress note (stderr), printed as it is: notes carry keys and table names, and
        a key like "rack[/]7" taken for markup stopped the command."""
        self.err.print(message, markup=False)


def get(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj


class _Emitted:
    """Whether this invocation has printed its JSON object (main() prints an error object
    under --json only when it has not)."""

    done = False


def emit_json(data: Any) -> None:
    """Exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(data, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()
    _Emitted.done = True


def json_emitted() -> bool:
    return _Emitted.done


def reset_emitted() -> None:
    _Emitted.done = False


def check_endpoint(url: str) -> None:
    """--endpoint-url as botocore takes it, said in one line before any call (botocore's
    own ValueError names neither the option nor the form)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"--endpoint-url {url!r} is not a URL: give http(s)://HOST[:PORT], "
            "e.g. http://127.0.0.1:4566"
        )


#: the width of tables and notes written to a pipe or a file (rich's own default, 80, cut
#: route and table names to "membershi…"); COLUMNS still wins, as rich reads it first
PIPED_WIDTH = 160


def console(*, stderr: bool) -> Console:
    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(stderr=stderr, highlight=False, width=PIPED_WIDTH)
    return out
