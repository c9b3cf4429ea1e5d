"""`dualwrite`: the console script. Errors become one line and an exit code, not a traceback."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import typer

from dualwrite.cli import (
    cmd_backfill,
    cmd_cutover,
    cmd_demo,
    cmd_preview,
    cmd_reconcile,
    cmd_replicate,
    cmd_setup,
)
from dualwrite.cli.context import AppContext
from dualwrite.errors import DualwriteError

app = typer.Typer(
    name="dualwrite",
    help="Migrate live DynamoDB tables with zero downtime: prepare, backfill, replicate, "
    "reconcile, cut over.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Path = typer.Option(
        Path("dualwrite.yaml"), "--config", "-c", help="Migration file (YAML)."
    ),
    endpoint_url: str | None = typer.Option(
        None,
        "--endpoint-url",
        envvar="AWS_ENDPOINT_URL",
        help="AWS endpoint, e.g. the embedded emulator's http://127.0.0.1:PORT.",
    ),
    region: str | None = typer.Option(None, "--region", help="AWS region."),
) -> None:
    ctx.obj = AppContext.from_options(config, endpoint_url, region)


for module in (
    cmd_setup,
    cmd_preview,
    cmd_backfill,
    cmd_replicate,
    cmd_reconcile,
    cmd_cutover,
    cmd_demo,
):
    module.register(app)


def _from_ctrl_c(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps our errors to exit codes (DESIGN.md section 4).

    Typer (standalone mode) turns usage errors into exit 2 itself; everything else that
    escapes a command becomes one line on stderr, never a traceback.
    """
    try:
        app(args=argv, prog_name="dualwrite")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except SystemExit as exc:
        if _from_ctrl_c(exc):  # typer turns Ctrl-C into a silent exit 130: say why
            sys.stderr.write("interrupted\n")
        raise
    except DualwriteError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence: one line, exit 1
        if os.environ.get("DUALWRITE_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {exc} (set DUALWRITE_DEBUG=1 for details)\n"
        )
        sys.exit(1)
