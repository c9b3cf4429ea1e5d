"""ministack (PyPI, MIT): a second AWS emulator, for what moto cannot do (Step Functions
Distributed Map executing for real, Lambda functions run as Python subprocesses, event source
mappings polling DynamoDB streams).

ministack pins botocore, so it lives in its own virtualenv in the git-ignored .bench/, made
on first use (as bench/ installs dynalite), with our runtime dependencies installed beside it:
its Lambda workers run with that interpreter, as a Lambda runtime runs with our layer.

A server runs on 127.0.0.1 on a free port, in its own process group (its Lambda workers are
its children), and stop() ends the whole group.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from dualwrite.emulator import HOST, free_port

ROOT = Path(__file__).resolve().parents[1]
VERSION = "1.5.33"
VENV = ROOT / ".bench" / f"ministack-{VERSION}"
PYTHON = VENV / "bin" / "python"


class MinistackUnavailable(Exception):
    """The ministack virtualenv could not be made (e.g. no package index): tests skip."""


def runtime_requirements() -> list[str]:
    """pyproject's [project] dependencies: what our Lambda layer ships."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [str(d) for d in data["project"]["dependencies"]]


def ensure_venv(venv: Path = VENV, extra: tuple[str, ...] = ()) -> Path:
    """The interpreter of the ministack virtualenv, made (or brought up to date) first.

    extra: more requirements (the rehearsal's aws-sam-translator), in a venv of their own."""
    wanted = (f"ministack=={VERSION}", *runtime_requirements(), *extra)
    try:
        return stamped_venv(venv, wanted)
    except VenvUnavailable as exc:
        raise MinistackUnavailable(f"cannot install ministack {VERSION}: {exc}") from None


class VenvUnavailable(Exception):
    """A virtualenv's requirements could not be installed (the message: pip's last line)."""


def stamped_venv(venv: Path, requirements: tuple[str, ...]) -> Path:
    """The interpreter of `venv`, made with `requirements` first unless its stamp says it
    has exactly them. Under a file lock: pytest-xdist workers may all reach their first use
    at once, and the second must wait for the first's install rather than install over it."""
    python, stamp = venv / "bin" / "python", venv / ".installed"
    wanted = "\n".join(requirements)

    def installed() -> bool:
        return python.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == wanted

    if installed():
        return python
    venv.parent.mkdir(exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if installed():  # another process made it while we waited
            return python
        print(f"installing {requirements[0]} into {venv} (first use) ...", file=sys.stderr)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 *requirements],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or "").strip().splitlines()[-1:] or [str(exc)]
            raise VenvUnavailable(detail[0]) from None
        stamp.write_text(wanted, encoding="utf-8")
    return python


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Ministack:
    """One ministack server. Use as a context manager, or start() / stop()."""

    log_path: Path
    startup_timeout: float = 60.0
    port: int = 0
    venv: Path = VENV
    extra_requirements: tuple[str, ...] = ()
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        # only what it needs: its Lambda workers inherit this environment
        keep = ("PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(
            BIND_HOST=HOST,
            GATEWAY_PORT=str(self.port),
            IOT_MTLS_ENABLED="0",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def start(self) -> str:
        python = ensure_venv(self.venv, self.extra_requirements)
        self.port = self.port or free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [str(python), "-m", "ministack"],
                cwd=self.log_path.parent,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        health = f"{self.endpoint}/_ministack/health"
        deadline = time.monotonic() + self.startup_timeout
        while not _healthy(health):
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise RuntimeError(f"ministack exited at start (code {code}): {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ministack did not answer {health} in time")
            time.sleep(0.1)
        return self.endpoint

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """End the server and every process of its group (its Lambda workers)."""
        process, self._process = self._process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session: the server leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        # workers outlive a leader that exited: the group goes down whatever happened
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.wait()
        # SIGKILL is delivered asynchronously: return once no member of the group is left
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def __enter__(self) -> Ministack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
