from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.config import load_migration, parse_migration
from dualwrite.errors import ConfigError
from tests.conftest import MIGRATIONS

SERVERS = {"name": "servers", "source": "ServersTable", "target": "CoreTable", "mapping": "servers"}
CORE = {"key": {"PK": "S", "SK": "S"}}
BASE = {"routes": [SERVERS], "targets": {"CoreTable": CORE}}


def index(name: str, **key: str) -> dict[str, object]:
    return {"name": name, "key": key}


def test_shipped_files_load() -> None:
    core = load_migration(MIGRATIONS / "coretable.yaml")
    assert [r.name for r in core.routes] == ["servers", "memberships"]
    assert core.targets["CoreTable"].indexes[0].name == "GSI1"
    assert list(core.targets["CoreTable"].indexes[0].key) == ["SK", "PK"]
    stripe = load_migration(MIGRATIONS / "stripe-rename.yaml")
    assert len(stripe.routes) == 4
    assert all(r.mapping == "identity" for r in stripe.routes)
    assert all(r.source.startswith("ai-nexus-dev-stripe-") for r in stripe.routes)
    assert all(r.target.startswith("diatonic-ai-stripe-") for r in stripe.routes)
    assert stripe.cutover.discover and stripe.cutover.observation_days == 7


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": "blue"}, "colour: unknown key"),
        ({"routes": []}, "routes: List should have at least 1 item"),
        (
            {"routes": [{"name": "a", "source": "Tab", "target": "Tgt"}]},
            "routes[0].mapping: Field required",
        ),
        (
            {"routes": [{"name": "a", "source": "Tab", "target": "Tgt", "mapping": "nope"}]},
            "routes[0].mapping: unknown mapping 'nope'",
        ),
        (
            {
                "routes": [
                    {
                        "name": "a",
                        "source": "Tab",
                        "target": "Tgt",
                        "mapping": "identity",
                        "extra": 1,
                    }
                ]
            },
            "routes[0].extra: unknown key",
        ),
        (  # a misspelt required key: the typo, not "mapping: Field required"
            {"routes": [{"name": "a", "source": "Tab", "target": "Tgt", "mappin": "identity"}]},
            "routes[0].mappin: unknown key (and 1 more problem(s))",
        ),
        ({"targets": {"CoreTable": {"key": {"PK": "X"}}}}, "targets.CoreTable.key.PK"),
        (
            {"targets": {"CoreTable": {"key": {"PK": "S", "SK": "S", "Z": "S"}}}},
            "at most one range",
        ),
        ({"cutover": {"observation_days": -1}}, "cutover.observation_days"),
        ({"targets": {"Elsewhere": {"key": {"PK": "S"}}}}, "no route writes to this table"),
        # what DynamoDB refuses, said before prepare turns on a stream or takes a backup
        (
            {"routes": [{**SERVERS, "source": "Servers Table"}]},
            "routes[0].source: 'Servers Table' is not a name DynamoDB takes",
        ),
        ({"control_table": "dw"}, "control_table: 'dw' is not a name DynamoDB takes"),
        (
            {"targets": {"CoreTable": {**CORE, "indexes": [index("GSI1", SK="N", PK="S")]}}},
            "indexes[0].key.SK: N, but SK is S elsewhere in this table",
        ),
        (
            {"targets": {"CoreTable": {**CORE, "indexes": [index("GSI1", SK="S")] * 2}}},
            "indexes: names must be unique, repeated: GSI1",
        ),
        (
            {"targets": {"CoreTable": {**CORE, "indexes": [index("GSI 1", SK="S")]}}},
            "'GSI 1' is not a name DynamoDB takes",
        ),
        (
            {
                "targets": {
                    "CoreTable": {**CORE, "indexes": [index(f"G{i:02}", SK="S") for i in range(21)]}
                }
            },
            "indexes: at most 20 per table, got 21",
        ),
        # identity owns every key of its target: no other route may share it
        (
            {
                "routes": [
                    {"name": "a", "source": "TblA", "target": "TblAB", "mapping": "identity"},
                    {"name": "b", "source": "TblB", "target": "TblAB", "mapping": "identity"},
                ],
                "targets": {},
            },
            "routes[1].mapping: route b (identity) could write keys (every key) that route a "
            "(identity) writes on TblAB",
        ),
        (
            {
                "routes": [
                    SERVERS,
                    {**SERVERS, "name": "all", "source": "Other", "mapping": "identity"},
                ]
            },
            "route all (identity) could write keys (every key) that route servers (servers)",
        ),
    ],
)
def test_bad_files_name_the_key_and_the_problem(patch: dict[str, object], message: str) -> None:
    data = {**BASE, **patch}
    with pytest.raises(ConfigError) as info:
        parse_migration(data, "m.yaml")
    text = str(info.value)
    assert message in text
    assert text.startswith("m.yaml: ")
    assert "\n" not in text


def test_duplicate_routes_and_sources_are_refused() -> None:
    route = BASE["routes"][0]  # type: ignore[index]
    with pytest.raises(ConfigError, match="route names must be unique"):
        parse_migration({**BASE, "routes": [route, route]})
    with pytest.raises(ConfigError, match="each source table feeds one route"):
        parse_migration({**BASE, "routes": [route, {**route, "name": "other"}]})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_migration(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: [\n  - {name: a\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_migration(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_migration(scalar)


@pytest.mark.parametrize(
    ("text", "where", "name"),
    [
        (  # a second `routes:` silently replaced the first one's routes
            "control_table: c\nroutes:\n  - {name: a, source: A, target: A2, mapping: identity}\n"
            "routes:\n  - {name: b, source: B, target: B2, mapping: identity}\n",
            "line 4",
            "routes",
        ),
        (  # the first target was dropped without a word
            "control_table: c\nroutes:\n  - name: a\n    source: A\n    target: A1\n"
            "    target: A2\n    mapping: identity\n",
            "line 6",
            "target",
        ),
        (  # nested: a declarative mapping's `set` naming an attribute twice
            "control_table: c\nroutes:\n  - name: a\n    source: A\n    target: A2\n"
            "    mapping:\n      key: {PK: 'A#{id}'}\n      set: {Type: x, Type: y}\n",
            "line 8",
            "Type",
        ),
    ],
)
def test_a_key_given_twice_in_a_mapping_is_refused(
    tmp_path: Path, text: str, where: str, name: str
) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{where}, column \d+: '{name}' is given twice"):
        load_migration(path)


@pytest.mark.parametrize(("side", "other"), [("target", "source"), ("source", "target")])
def test_a_route_on_the_control_table_is_refused_as_such(side: str, other: str) -> None:
    """A target named like the control table was reported as "also a source"; a source named
    like it was accepted, and dualwrite's records would have gone into the source table."""
    route = {"name": "r", side: "ctl", other: "Other", "mapping": "identity"}
    with pytest.raises(ConfigError, match=rf"route r: {side} ctl is the control table"):
        parse_migration({"control_table": "ctl", "routes": [route]})


def test_anchors_and_merge_keys_load_and_a_merged_key_may_be_overridden(tmp_path: Path) -> None:
    """The duplicate-key check refused every `<<: *anchor` ("could not determine a
    constructor for the tag 'tag:yaml.org,2002:merge'")."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "control_table: ctl-table\nroutes:\n"
        "  - &first {name: servers, source: ServersTable, target: ServersCopy, mapping: identity}\n"
        "  - {<<: *first, name: members, source: UserMembershipTable, target: MembersCopy}\n"
    )
    routes = load_migration(path).routes
    assert [(r.name, r.source, r.target, r.mapping) for r in routes] == [
        ("servers", "ServersTable", "ServersCopy", "identity"),
        ("members", "UserMembershipTable", "MembersCopy", "identity"),
    ]
