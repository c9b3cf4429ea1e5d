"""Under --json every command prints exactly one JSON object on stdout (DESIGN.md section 4),
failures included: a bad migration file or a bad option used to print nothing there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualwrite.cli import app as cli_app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli_app.main(list(argv))
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_a_bad_migration_file_under_json_prints_one_error_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nroutes: []\nmappin: x\n")
    code, out, err = run(capsys, "--config", str(bad), "status", "--json")
    assert code == 2
    (line,) = out.splitlines()
    doc = json.loads(line)
    assert doc["exit_code"] == 2 and "unknown key" in doc["error"]
    assert err.startswith("error: ") and "Traceback" not in err


def test_a_usage_error_under_json_prints_one_error_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "status", "--json", "--no-such-option")
    assert code == 2
    assert json.loads(out) == {
        "error": "bad usage: No such option: --no-such-option",
        "exit_code": 2,
    }
    assert err == (
        "error: bad usage: No such option: --no-such-option (see `dualwrite status --help`)\n"
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (  # click printed a three-line block: Usage, Try, Error
            ("seed", "--servers", "x"),
            "error: bad usage: Invalid value for '--servers': Input should be a valid integer, "
            "unable to parse string as an integer (see `dualwrite seed --help`)",
        ),
        (  # "No such option: --config", without saying where it goes
            ("plan", "--config", "m.yaml"),
            "error: bad usage: No such option: --config (--config is an option of dualwrite "
            "itself: put it before the command, as in `dualwrite --config ... plan`)",
        ),
    ],
)
def test_a_usage_error_is_one_line_saying_what_to_do(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], line: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (2, "", line + "\n")


def test_without_json_a_failure_prints_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "--config", str(tmp_path / "missing.yaml"), "status")
    assert code == 2 and out == "" and err.startswith("error: ")


def test_seed_refuses_memberships_without_servers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It made 0 memberships and exited 0. Refused before any AWS call (no endpoint here)."""
    monkeypatch.chdir(tmp_path)  # no dualwrite.yaml
    code, out, err = run(capsys, "seed", "--servers", "0", "--memberships", "5")
    assert (code, out) == (2, "")
    assert err == "error: --memberships needs --servers 1 or more (a membership is of a server)\n"


def test_an_option_without_its_value_names_the_commands_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """click raises this one without a context: the line said nothing of what to do."""
    code, out, err = run(capsys, "reconcile", "--segments")
    assert (code, out) == (2, "")
    assert err == (
        "error: bad usage: Option '--segments' requires an argument. "
        "(see `dualwrite reconcile --help`)\n"
    )


def test_a_deleted_current_directory_is_no_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed script has no '' on sys.path, so main asks for the current directory
    (a custom mapping's module is imported from there): run from a directory deleted under
    the shell, os.getcwd() raised FileNotFoundError, a traceback even for --help."""
    import os
    import sys

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    code, out, err = run(capsys, "--help")
    assert code == 0 and "Usage: dualwrite" in out and "Traceback" not in err
