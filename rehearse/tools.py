"""The rehearsal's tools, each in a virtualenv of its own under the git-ignored .bench/, and
every command it runs in a process group of its own, ended whatever happens.

- aws-sam-cli does not install beside the dev dependencies (it pins boto3 < 1.44, click
  8.1.8 and cryptography < 51, which it would downgrade), nor beside ministack (botocore
  pinned to another version): its own virtualenv.
- ministack (tests/ministack_harness.py) with aws-sam-translator beside it, which its
  CloudFormation needs for the SAM transform; a virtualenv apart from the tests' so neither
  reinstalls the other's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.ministack_harness import VenvUnavailable, stamped_venv

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".bench"
SAM_VERSION = "1.170.0"
SAM_VENV = BENCH / f"sam-cli-{SAM_VERSION}"
MINISTACK_VENV_SUFFIX = "-sam"
#: the SAM transform for ministack's CloudFormation (what ministack[full] would add)
MINISTACK_EXTRA = ("aws-sam-translator>=1.90",)


class ToolUnavailable(Exception):
    """A tool's virtualenv could not be made (no package index, say)."""


def ensure_sam() -> Path:
    """The `sam` command of the rehearsal's aws-sam-cli virtualenv, made on first use."""
    wanted = f"aws-sam-cli=={SAM_VERSION}"
    try:
        python = stamped_venv(SAM_VENV, (wanted,))
    except VenvUnavailable as exc:
        raise ToolUnavailable(f"cannot install {wanted}: {exc}") from None
    return python.parent / "sam"


@dataclass(frozen=True)
class Finished:
    command: tuple[str, ...]
    returncode: int
    stdout: str
    seconds: float


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    timeout: float = 900.0,
) -> Finished:
    """Run a command in its own process group, its stderr appended to log; the whole group
    is ended if it times out or if anything (Ctrl-C included) interrupts the wait."""
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as err:
        err.write(f"\n$ {' '.join(command)}\n".encode())
        err.flush()
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        except BaseException:
            stop_group(process)
            raise
        finally:
            # a finished leader may leave children (sam's workers): the group goes down too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    text = out.decode("utf-8", errors="replace")
    with log.open("a", encoding="utf-8") as err:
        err.write(text)
    return Finished(tuple(command), process.returncode, text, time.monotonic() - started)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """End a process started with start_new_session and everything of its group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
            return
    process.wait()


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt, so every `finally` runs as on
    Ctrl-C (SIGINT too: a shell starts a background job with it ignored)."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, interrupt) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
