"""The cutover block's issue-15 keys: smoke tests, the watch, and section 8's fields."""

from __future__ import annotations

import datetime
import re

import pytest
import yaml

from dualwrite.config import parse_migration
from dualwrite.errors import ConfigError
from tests.conftest import MIGRATIONS

BASE = {
    "routes": [{"name": "t", "source": "OldTable", "target": "NewTable", "mapping": "identity"}],
}


def cutover(**block: object) -> dict[str, object]:
    return {**BASE, "cutover": block}


def test_defaults() -> None:
    c = parse_migration(BASE).cutover
    assert c.smoke_tests == []
    assert c.watch_seconds == 0
    assert c.watch_alarms == []
    assert c.overlap_seconds is None
    assert c.reverse is True


def test_full_block_parses() -> None:
    c = parse_migration(
        cutover(
            smoke_tests=[
                {"function": "api", "event": {"path": "/health"}, "expect": {"statusCode": 200}},
                {"function": "worker", "event": {}},
            ],
            watch_seconds=300,
            watch_alarms=["api-errors"],
            overlap_seconds=900,
            reverse=False,
        )
    ).cutover
    assert c.smoke_tests[0].function == "api"
    assert c.smoke_tests[0].event == {"path": "/health"}
    assert c.smoke_tests[0].expect == {"statusCode": 200}
    assert c.smoke_tests[1].expect is None
    assert (c.watch_seconds, c.watch_alarms, c.overlap_seconds, c.reverse) == (
        300,
        ["api-errors"],
        900,
        False,
    )


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"smoke_tests": [{"function": "f", "event": {}, "expect": [200]}]},
            "cutover.smoke_tests[0].expect: must be a mapping, not list",
        ),
        (
            {"smoke_tests": [{"function": "f", "event": {}, "expect": "ok"}]},
            "cutover.smoke_tests[0].expect: must be a mapping, not str",
        ),
        (
            {"smoke_tests": [{"function": "f", "event": "ping"}]},
            "cutover.smoke_tests[0].event: must be a mapping, not str",
        ),
        ({"smoke_tests": [{"function": "f"}]}, "cutover.smoke_tests[0].event: Field required"),
        ({"smoke_tests": [{"event": {}}]}, "cutover.smoke_tests[0].function: Field required"),
        (
            {"smoke_tests": [{"function": "f", "event": {}, "expct": {}}]},
            "cutover.smoke_tests[0].expct: unknown key",
        ),
        (
            {"smoke_tests": [{"function": "f", "event": {"at": datetime.date(2024, 1, 1)}}]},
            "cutover.smoke_tests[0].event: must be plain JSON data",
        ),
        ({"watch_seconds": -1}, "cutover.watch_seconds"),
        ({"watch_seconds": 86401}, "cutover.watch_seconds"),
        ({"watch_alarms": "one"}, "cutover.watch_alarms"),
        ({"watch_alarms": [""]}, "cutover.watch_alarms[0]"),
        ({"overlap_seconds": -5}, "cutover.overlap_seconds"),
        ({"reverse": "maybe"}, "cutover.reverse"),
    ],
)
def test_bad_blocks_give_one_line_naming_the_key(block: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_migration(cutover(**block), "m.yaml")
    text = str(info.value)
    assert text.startswith(f"m.yaml: {message}")
    assert "\n" not in text
    assert info.value.exit_code == 2


def test_the_commented_example_in_the_stripe_file_is_valid() -> None:
    text = (MIGRATIONS / "stripe-rename.yaml").read_text(encoding="utf-8")
    assert "  # smoke_tests:" in text and "  # watch_seconds:" in text
    live = re.sub(r"^  # ((?:smoke_tests|watch_)\w*:)", r"  \1", text, flags=re.M)
    live = re.sub(r"^  #   - ", "    - ", live, flags=re.M)
    c = parse_migration(yaml.safe_load(live)).cutover
    assert [t.function for t in c.smoke_tests] == [
        "stripe-customer-portal",
        "stripe-idempotency-janitor",
    ]
    assert c.smoke_tests[0].expect == {"statusCode": 200} and c.smoke_tests[1].expect is None
    assert (c.watch_seconds, c.watch_alarms) == (300, ["stripe-api-5xx"])
