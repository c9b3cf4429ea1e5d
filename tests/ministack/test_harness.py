"""The ministack harness itself: its server answers on loopback, and stopping it ends its
whole process group, Lambda workers included."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from dualwrite.aws.clients import AwsSettings, Clients
from tests.ministack.stack import ROLE
from tests.ministack_harness import Ministack, MinistackUnavailable


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            members.append(int(entry.name))
    return members


def echo_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("echo.py", "def handler(event, context):\n    return {'echo': event}\n")
    return buffer.getvalue()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_stop_ends_the_server_and_its_lambda_workers(tmp_path: Path) -> None:
    server = Ministack(log_path=tmp_path / "ministack.log")
    try:
        server.start()
    except MinistackUnavailable as exc:
        pytest.skip(str(exc))
    try:
        assert server.endpoint.startswith("http://127.0.0.1:")
        lam = Clients(
            AwsSettings(endpoint_url=server.endpoint, region="us-east-1", emulator_credentials=True)
        ).lambda_
        lam.create_function(
            FunctionName="echo",
            Runtime="python3.12",
            Handler="echo.handler",
            Role=ROLE,
            Code={"ZipFile": echo_zip()},
        )
        answer = lam.invoke(FunctionName="echo", Payload=json.dumps({"n": 1}))
        assert json.loads(answer["Payload"].read()) == {"echo": {"n": 1}}
        assert server._process is not None
        pgid = server._process.pid
        assert os.getpgid(pgid) == pgid  # its own group, not the test's
        assert len(group_members(pgid)) >= 2  # the server and (at least) the echo worker
    finally:
        server.stop()
    assert group_members(pgid) == []
