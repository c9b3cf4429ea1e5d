from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dualwrite.derived import Group, PageGrouper, derive_items
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema

members = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))


def m(user: int, server: int) -> dict[str, Any]:
    return {"userId": {"S": f"u{user}"}, "serverId": {"S": f"s{server}"}, "role": {"S": "viewer"}}


def pages_of(items: list[dict[str, Any]], cuts: list[int]) -> list[list[dict[str, Any]]]:
    bounds = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    return [items[a:b] for a, b in itertools.pairwise(bounds)] or [[]]


@given(
    st.lists(st.integers(1, 4), min_size=0, max_size=12),
    st.lists(st.integers(0, 50), max_size=6),
)
def test_each_user_comes_out_once_complete_whatever_the_page_cuts(
    sizes: list[int], cuts: list[int]
) -> None:
    items = [m(u, s) for u, size in enumerate(sizes) for s in range(size)]
    grouper = PageGrouper(members, from_start=True)
    pages = pages_of(items, cuts)
    groups: list[Group] = []
    for i, page in enumerate(pages):
        groups += grouper.add_page(page, last_page=i == len(pages) - 1)
    assert [g.value["S"] for g in groups] == [f"u{u}" for u in range(len(sizes))]
    assert all(g.complete for g in groups)
    assert [len(g.members) for g in groups] == sizes


def test_first_group_after_a_resume_is_incomplete_and_only_it() -> None:
    grouper = PageGrouper(members, from_start=False)
    first = grouper.add_page([m(1, 5), m(2, 1), m(3, 1)], last_page=False)
    assert [(g.value["S"], g.complete) for g in first] == [("u1", False), ("u2", True)]
    rest = grouper.add_page([m(3, 2)], last_page=True)
    assert [(g.value["S"], g.complete, len(g.members)) for g in rest] == [("u3", True, 2)]


def test_a_resumed_group_spanning_pages_stays_incomplete() -> None:
    grouper = PageGrouper(members, from_start=False)
    assert grouper.add_page([m(1, 5)], last_page=False) == []
    [g] = grouper.add_page([m(1, 6)], last_page=True)
    assert not g.complete and len(g.members) == 2


def test_derive_items_queries_only_incomplete_groups() -> None:
    asked: list[str] = []

    def fetch(group: dict[str, Any]) -> list[dict[str, Any]]:
        asked.append(group["S"])
        return [] if group["S"] == "u2" else [m(1, 1), m(1, 2)]

    groups = [
        Group({"S": "u1"}, (m(1, 1),), complete=False),
        Group({"S": "u2"}, (m(2, 1),), complete=False),
        Group({"S": "u3"}, (m(3, 1),), complete=True),
    ]
    out = derive_items(members, groups, fetch, name_for=lambda g: "N-" + g["S"])
    assert asked == ["u1", "u2"]
    assert out[0][1] is not None and out[0][1]["name"] == {"S": "N-u1"}
    assert out[1] == ({"PK": {"S": "USER#u2"}, "SK": {"S": "METADATA"}}, None)
    assert out[2][0] == {"PK": {"S": "USER#u3"}, "SK": {"S": "METADATA"}}


def test_an_empty_first_page_after_a_resume_keeps_the_first_group_incomplete() -> None:
    grouper = PageGrouper(members, from_start=False)
    assert grouper.add_page([], last_page=False) == []
    [g1, g2] = grouper.add_page([m(1, 5), m(2, 1)], last_page=True)
    assert (g1.complete, g2.complete) == (False, True)
