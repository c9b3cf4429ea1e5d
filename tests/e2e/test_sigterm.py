"""SIGTERM (systemd, Docker, CI, a test's terminate()) stops `local`, `demo` and `replicate`
as Ctrl-C does: no traceback, and no moto server left running behind them."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dualwrite.aws.clients import Clients
from dualwrite.control import Phase
from dualwrite.emulator import HOST, free_port
from tests.conftest import ROOT, Cli
from tests.e2e.test_replicate_cli import CORE, KEYS, setup


def children(pid: int) -> list[int]:
    """The process's children (Linux)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie no longer runs anything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((HOST, port)) == 0


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dualwrite", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(stream: object, found: Callable[[str], bool]) -> str:
    """Lines of a child's output until one satisfies `found` (the child has reached it)."""
    assert hasattr(stream, "readline")
    while True:
        line: str = stream.readline()
        assert line, "the command ended before printing the line looked for"
        if found(line):
            return line


def terminate(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_stops_local_and_its_emulator() -> None:
    port = free_port()
    proc = start("local", "--port", str(port))
    read_until(proc.stdout, lambda line: f"http://{HOST}:{port}" in line)
    emulators = children(proc.pid)
    assert len(emulators) == 1 and running(emulators[0]) and listening(port)

    _out, err = terminate(proc)

    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not running(emulators[0])
    assert not listening(port)


def test_sigterm_stops_the_demo_and_its_private_emulator() -> None:
    port = free_port()
    proc = start("demo", "--servers", "200", "--memberships", "600", "--port", str(port))
    read_until(proc.stdout, lambda line: "1. seed legacy data" in line)
    emulators = children(proc.pid)
    assert len(emulators) == 1 and running(emulators[0])

    _out, err = terminate(proc)

    assert proc.returncode == 130, err  # as on Ctrl-C
    assert "Traceback" not in err
    assert not running(emulators[0])
    assert not listening(port)


def test_sigterm_stops_replicate_after_its_batch_with_a_summary(
    cli: Cli, emulator_clients: Clients
) -> None:
    store = setup(cli, emulator_clients)
    store.set_phase("servers", Phase.BACKFILLED)
    proc = cli.start(CORE, "replicate", "--json")
    # the runner names the held route once it is running (and listening for signals)
    read_until(proc.stderr, lambda line: "not backfilled yet" in line)

    out, err = terminate(proc)

    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopping" in err
    summary = json.loads(out)
    assert set(summary) >= KEYS and summary["held_routes"] == ["memberships"]
