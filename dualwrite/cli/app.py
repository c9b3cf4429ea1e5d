"""`dualwrite`: the console script. Errors become one line and an exit code, not a traceback."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

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
from dualwrite.cli.context import AppContext, emit_json, json_emitted, reset_emitted
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

#: the command names, for a usage error click gives without its command
COMMANDS = frozenset(c.name for c in app.registered_commands if c.name)


#: click's usage errors' base (ClickException), whether typer vendors click (0.2x) or not
USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _from_ctrl_c(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps our errors to exit codes (DESIGN.md section 4).

    Usage errors are one line on stderr with what to do, exit 2, and under --json their
    message is the JSON error's too (click's standalone mode printed its usage block and
    exited, out of our reach); everything else that escapes a command becomes one line on
    stderr, never a traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    reset_emitted()
    # a custom mapping (`mapping: my_mappings.orders:OrdersMapping`) is the user's module in
    # the directory they run from: `python -m dualwrite` imports from there, the installed
    # `dualwrite` script did not (appended: it shadows no installed module)
    try:
        here = os.getcwd()
    except OSError:  # run from a directory deleted under the shell: nothing to import there
        here = None
    if here is not None and here not in sys.path and "" not in sys.path:
        sys.path.append(here)
    try:
        returned = app(args=args, prog_name="dualwrite", standalone_mode=False)
    except KeyboardInterrupt:
        _fail(args, "interrupted", 130)
    except USAGE_ERROR as exc:
        code = int(exc.exit_code)  # type: ignore[attr-defined]
        if type(exc).__name__ == "NoArgsIsHelpError":  # `dualwrite` alone: the help, as is
            exc.show()  # type: ignore[attr-defined]
            _json_error(args, "bad usage: no command given", code)
            sys.exit(code)
        what = "bad usage" if code == 2 else f"exit code {code}"
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        sys.stderr.write(f"error: {what}: {message}{_usage_hint(exc, args)}\n")
        _json_error(args, f"{what}: {message}", code)
        sys.exit(code)
    except typer.Abort:  # EOF at a prompt, or Ctrl-C in one
        _fail(args, "interrupted", 130)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if _from_ctrl_c(exc):  # Ctrl-C turned into a silent exit 130: say why
            _fail(args, "interrupted", code)
        if code != 0:  # a command's own exit code
            _json_error(args, f"exit code {code} (the message is on stderr)", code)
        raise
    except DualwriteError as exc:
        _fail(args, str(exc), exc.exit_code)
    except Exception as exc:  # the last line of defence: one line, exit 1
        if os.environ.get("DUALWRITE_DEBUG"):
            traceback.print_exc()
        _fail(
            args,
            f"unexpected {type(exc).__name__}: {exc} (set DUALWRITE_DEBUG=1 for details)",
            1,
        )
    # typer.Exit(code) from a command, or typer's own 130 for a Ctrl-C
    code = returned if isinstance(returned, int) else 0
    if code == 130:
        _fail(args, "interrupted", code)
    if code != 0:
        _json_error(args, f"exit code {code} (the message is on stderr)", code)
    sys.exit(code)


def _usage_hint(exc: Exception, args: list[str]) -> str:
    """What to do about a usage error, on its one line: dualwrite's own options go before
    the command (`dualwrite plan --config X` is refused), the rest is in the command's help."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None:  # click names no command (an option given without its value): the args do
        command = next((a for a in args if a in COMMANDS), None)
        return f" (see `dualwrite {command} --help`)" if command else " (see `dualwrite --help`)"
    root = ctx.find_root()
    name = getattr(exc, "option_name", None)
    if name and ctx is not root and any(name in p.opts for p in root.command.params):
        return (
            f" ({name} is an option of dualwrite itself: put it before the command, "
            f"as in `dualwrite {name} ... {ctx.info_name}`)"
        )
    return f" (see `{ctx.command_path} --help`)"


def _fail(args: list[str], message: str, code: int) -> NoReturn:
    """One line on stderr (and the JSON error object under --json), then exit `code`."""
    sys.stderr.write(f"{message}\n" if code == 130 else f"error: {message}\n")
    _json_error(args, message, code)
    sys.exit(code)


def _json_error(args: list[str], message: str, code: int) -> None:
    """Under --json a command prints exactly one JSON object (DESIGN.md section 4): a
    failure that printed none prints {"error", "exit_code"}, so that a script reading
    stdout gets an object, not an empty line, whatever went wrong."""
    if "--json" in args and not json_emitted():
        emit_json({"error": message, "exit_code": code})
