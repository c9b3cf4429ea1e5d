"""The engines the benchmarks run on: moto's server (the embedded emulator) and dynalite
(an independent DynamoDB implementation from the npm registry, whose Scan is linear; it has no
streams). dynalite installs itself into the git-ignored .bench/ on first use."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dualwrite.emulator import Emulator, free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench"
DYNALITE = BENCH_DIR / "node_modules" / "dynalite" / "cli.js"


@contextmanager
def moto_engine() -> Iterator[str]:
    with Emulator() as emulator:
        yield emulator.endpoint


def ensure_dynalite() -> None:
    if DYNALITE.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("the dynalite engine needs node and npm")
    BENCH_DIR.mkdir(exist_ok=True)
    print("installing dynalite into .bench/node_modules (first use) ...", file=sys.stderr)
    subprocess.run(
        [npm, "install", "--prefix", str(BENCH_DIR), "--no-audit", "--no-fund", "dynalite@4"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def dynalite_engine() -> Iterator[str]:
    ensure_dynalite()
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(DYNALITE), "--host", "127.0.0.1", "--port", str(port),
         "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Dynalite listening at: ..." once it listens
        if "listening" not in line:
            raise SystemExit(f"dynalite did not start: {line.strip()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


ENGINES = {"moto": moto_engine, "dynalite": dynalite_engine}
