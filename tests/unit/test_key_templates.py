"""Key templates: parsing, rendering and parsing back, and exact key-space overlap."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.mapping.templates import (
    EVERYTHING,
    Template,
    TemplateError,
    describe_space,
    spaces_overlap,
    templates_overlap,
)

T = Template.parse
values = st.text(min_size=1, max_size=8)
literals = st.text(max_size=4).filter(lambda t: "{" not in t and "}" not in t)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{a}{b}", "cannot be parsed back: placeholders {a} and {b} need literal text"),
        ("X#{a", "'{' without a '}'"),
        ("X#a}", "'}' without a '{'"),
        ("X#{}", "empty or nested placeholder"),
        ("", "template is empty"),
    ],
)
def test_bad_templates_say_why(text: str, why: str) -> None:
    with pytest.raises(TemplateError) as raised:
        T(text)
    assert why in str(raised.value)


def test_a_template_is_literal_text_around_placeholders() -> None:
    t = T("CUSTOMER#{customerId}#ORDER#{orderId}")
    assert t.literals == ("CUSTOMER#", "#ORDER#", "") and t.names == ("customerId", "orderId")
    assert t.render({"customerId": "c1", "orderId": "o9"}) == "CUSTOMER#c1#ORDER#o9"
    assert t.match("CUSTOMER#c1#ORDER#o9") == {"customerId": "c1", "orderId": "o9"}
    assert t.match("CUSTOMER#c1") is None
    assert t.match("SERVER#c1#ORDER#o9") is None
    assert T("METADATA").match("METADATA") == {} and T("METADATA").match("METADATAX") is None
    assert T("A#{x}").match("A#") is None  # a placeholder is never empty


@given(values, literals, literals)
def test_one_placeholder_always_parses_back(value: str, prefix: str, suffix: str) -> None:
    t = T(prefix + "{x}" + suffix)
    assert t.match(t.render({"x": value})) == {"x": value}


@given(values, values)
def test_two_placeholders_parse_back_unless_the_first_holds_the_separator(a: str, b: str) -> None:
    t = T("{a}#{b}")
    back = t.match(t.render({"a": a, "b": b}))
    assert back is not None and t.render(back) == t.render({"a": a, "b": b})
    if "#" not in a:
        assert back == {"a": a, "b": b}


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("SERVER#{id}", "SERVER#{x}", True),
        ("SERVER#{id}", "USER#{x}", False),
        ("METADATA", "METADATA", True),
        ("METADATA", "META{x}", True),
        ("METADATA", "METADATA{x}", False),  # a placeholder is never empty
        ("ORDER#{o}", "ORDER#META", True),
        ("ORDER#{o}", "ITEM#{o}", False),
        ("{a}#X", "Y#{b}", True),  # Y#X... fits both
        ("{a}#X", "{b}#Y", False),
        ("A{x}B{y}C", "A{x}D{y}C", True),
        ("A{x}B", "A{x}C", False),
    ],
)
def test_overlap_is_exact(a: str, b: str, overlap: bool) -> None:
    assert templates_overlap(T(a), T(b)) is overlap
    assert templates_overlap(T(b), T(a)) is overlap


@given(st.text(alphabet="AB#", max_size=3), st.text(alphabet="AB#", max_size=3), literals)
def test_a_rendered_key_proves_an_overlap(prefix: str, suffix: str, value: str) -> None:
    a = T(prefix + "{x}" + suffix)
    rendered = a.render({"x": value or "v"})
    assert templates_overlap(a, T(rendered))


def test_key_spaces_overlap_only_when_every_shared_attribute_does() -> None:
    servers = {"PK": T("SERVER#{id}"), "SK": T("METADATA")}
    users = {"PK": T("USER#{userId}")}
    assert not spaces_overlap(servers, users)
    assert not spaces_overlap(servers, {"PK": T("SERVER#{id}"), "SK": T("CONFIG")})
    assert spaces_overlap(servers, {"PK": T("{x}"), "SK": T("META{y}")})
    assert spaces_overlap(EVERYTHING, servers)
    assert describe_space(servers) == "PK=SERVER#*, SK=METADATA"
    assert describe_space(EVERYTHING) == "every key"


def test_an_attribute_with_alternatives_overlaps_when_any_alternative_does() -> None:
    users = {"PK": T("USER#{u}"), "SK": (T("SERVER#{s}"), T("METADATA"))}
    assert not spaces_overlap(users, {"PK": T("USER#{c}"), "SK": T("ORDER#{o}")})
    assert spaces_overlap(users, {"PK": T("USER#{c}"), "SK": T("METADATA")})
    assert spaces_overlap({"PK": T("{c}"), "SK": T("SERVER#{o}")}, users)
    assert not spaces_overlap(users, {"PK": T("SERVER#{c}"), "SK": T("METADATA")})
    assert describe_space(users) == "PK=USER#*, SK=SERVER#* or METADATA"


small = st.lists(st.text(alphabet="AB#", max_size=2), min_size=1, max_size=3).filter(
    lambda lits: all(lits[1:-1]) and (len(lits) > 1 or lits[0] != "")
)  # literal text between placeholders; placeholders go between the list's entries
SHORT = [""] + [
    a + b + c + d
    for a in "AB#"
    for b in ["", *"AB#"]
    for c in ["", *"AB#"]
    for d in ["", *"AB#"]
    if (b or not c) and (c or not d)
]


def _regex(lits: list[str]) -> re.Pattern[str]:
    return re.compile(".+".join(re.escape(x) for x in lits))


@given(small, small)
def test_no_short_key_fits_two_templates_said_apart(a: list[str], b: list[str]) -> None:
    ta = T("".join(x + (f"{{p{i}}}" if i < len(a) - 1 else "") for i, x in enumerate(a)))
    tb = T("".join(x + (f"{{q{i}}}" if i < len(b) - 1 else "") for i, x in enumerate(b)))
    ra, rb = _regex(a), _regex(b)
    witness = next((s for s in SHORT if ra.fullmatch(s) and rb.fullmatch(s)), None)
    if witness is not None:
        assert templates_overlap(ta, tb), witness
