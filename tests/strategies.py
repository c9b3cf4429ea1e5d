"""Hypothesis strategies for DynamoDB wire-format values: every type, nesting, unicode,
38-digit numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from dualwrite.wire import number_spelling

texts = st.text(min_size=0, max_size=12)
names = st.text(min_size=1, max_size=10).filter(lambda n: n not in ("PK", "SK", "Type"))


@st.composite
def numbers(draw: Any) -> str:
    """Numbers as DynamoDB holds them: up to 38 significant digits, any sign and scale."""
    digits = draw(st.integers(min_value=1, max_value=38))
    mantissa = draw(st.integers(min_value=0, max_value=10**digits - 1))
    exponent = draw(st.integers(min_value=-20, max_value=20))
    sign = draw(st.sampled_from(["", "-"]))
    return str(Decimal(f"{sign}{mantissa}E{exponent}"))


#: numbers in the one spelling DynamoDB gives back ("leading and trailing zeroes are
#: trimmed", positional): what a key read from a table holds, and so what forward embeds
key_numbers = numbers().map(number_spelling)

binaries = st.binary(min_size=1, max_size=12)

scalars = st.one_of(
    texts.map(lambda s: {"S": s}),
    numbers().map(lambda n: {"N": n}),
    binaries.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=4).map(
        lambda s: {"SS": sorted(s)}
    ),
    st.sets(st.integers(-(10**12), 10**12), min_size=1, max_size=4).map(
        lambda s: {"NS": [str(x) for x in sorted(s)]}
    ),
    st.sets(binaries, min_size=1, max_size=3).map(lambda s: {"BS": sorted(s)}),
)

values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda xs: {"L": xs}),
        st.dictionaries(names, children, max_size=4).map(lambda d: {"M": d}),
    ),
    max_leaves=12,
)

attributes = st.dictionaries(names, values, max_size=6)
key_text = st.text(min_size=1, max_size=16)
