"""Key templates (`"CUSTOMER#{customerId}"`) and the key spaces they describe.

Pure. A template is literal text and `{placeholder}`s, never two placeholders side by side,
so a rendered key can be parsed back (section 11). A key space is one pattern (or a few
alternatives) per target key attribute; two key spaces overlap when some key matches both,
decided exactly by walking the two patterns together (an intersection of two small regular
languages).
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from dualwrite.wire import PLAIN_NUMBER


class TemplateError(ValueError):
    """A template that cannot be used; the message says why."""


@dataclass(frozen=True)
class Template:
    """Literal text around placeholders: `literals` has one more entry than `names`."""

    text: str
    literals: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        literals: list[str] = []
        names: list[str] = []
        rest = text
        while True:
            open_at, close_at = rest.find("{"), rest.find("}")
            if open_at < 0:
                if close_at >= 0:
                    raise TemplateError(f"template {text!r} has a '}}' without a '{{'")
                literals.append(rest)
                break
            if close_at >= 0 and close_at < open_at:
                raise TemplateError(f"template {text!r} has a '}}' without a '{{'")
            end = rest.find("}", open_at)
            if end < 0:
                raise TemplateError(f"template {text!r} has a '{{' without a '}}'")
            name = rest[open_at + 1 : end]
            if not name or "{" in name:
                raise TemplateError(f"template {text!r} has an empty or nested placeholder")
            literal = rest[:open_at]
            if names and not literal:
                raise TemplateError(
                    f"template {text!r} cannot be parsed back: placeholders {{{names[-1]}}} "
                    f"and {{{name}}} need literal text between them"
                )
            literals.append(literal)
            names.append(name)
            rest = rest[end + 1 :]
        if not text:
            raise TemplateError("template is empty")
        return cls(text, tuple(literals), tuple(names))

    @cached_property
    def constant(self) -> bool:
        return not self.names

    def render(self, values: MappingABC[str, str]) -> str:
        lits, names = self.literals, self.names
        if not names:
            return lits[0]
        if len(names) == 1:  # the common case, on every replicated record
            return lits[0] + values[names[0]] + lits[1]
        out = [lits[0]]
        for i, name in enumerate(names):
            out.append(values[name])
            out.append(lits[i + 1])
        return "".join(out)

    def match(self, text: str) -> dict[str, str] | None:
        """The placeholder values that render `text` (each placeholder up to the first
        occurrence of the literal after it), or None when `text` does not fit."""
        lits, names = self.literals, self.names
        if not text.startswith(lits[0]):
            return None
        if not names:
            return {} if text == lits[0] else None
        pos = len(lits[0])
        values: dict[str, str] = {}
        for i, name in enumerate(names[:-1]):
            end = text.find(lits[i + 1], pos + 1)
            if end < 0:
                return None
            value = text[pos:end]
            if values.setdefault(name, value) != value:
                return None
            pos = end + len(lits[i + 1])
        tail = lits[-1]
        if len(text) - pos <= len(tail) or not text.endswith(tail):
            return None
        last = text[pos : len(text) - len(tail)]
        if values.setdefault(names[-1], last) != last:
            return None
        return values

    def pattern(self) -> str:
        """For messages: the template with every placeholder shown as `*`."""
        return "*".join(self.literals)


#: a key space: target key attribute -> template (placeholders match any non-empty text),
#: or a tuple of templates when the attribute may match any of them (memberships: SK
#: SERVER#* or METADATA); an attribute left out matches anything
KeySpace = MappingABC[str, Template | tuple[Template, ...]]

#: the key space that matches every key (identity owns its whole target)
EVERYTHING: dict[str, Template] = {}


def alternatives(value: Template | tuple[Template, ...]) -> tuple[Template, ...]:
    return value if isinstance(value, tuple) else (value,)


def describe_space(space: KeySpace) -> str:
    if not space:
        return "every key"
    return ", ".join(
        f"{name}={' or '.join(t.pattern() for t in alternatives(v))}" for name, v in space.items()
    )


def _tokens(t: Template) -> list[str | None]:
    """One token per character of literal text; None stands for 'one or more of anything'."""
    out: list[str | None] = list(t.literals[0])
    for literal in t.literals[1:]:
        out.append(None)
        out.extend(literal)
    return out


def templates_overlap(a: Template, b: Template) -> bool:
    """Whether some text matches both templates (placeholders: any non-empty text)."""
    ta, tb = _tokens(a), _tokens(b)
    alphabet = {c for c in ta + tb if c is not None} | {"\x00"}  # \x00: any other char
    # state: (position in a, inside a wildcard of a?, position in b, inside wildcard of b?)
    start = (0, False, 0, False)
    seen = {start}
    todo = [start]

    def steps(tokens: list[str | None], pos: int, inside: bool, c: str) -> list[tuple[int, bool]]:
        out: list[tuple[int, bool]] = []
        if inside:  # after at least one character of a wildcard: more, or move on
            out.append((pos, True))
            pos += 1
            if pos < len(tokens) and tokens[pos] is None:
                out.append((pos, True))
            elif pos < len(tokens) and tokens[pos] == c:
                out.append((pos + 1, False))
            return out
        if pos < len(tokens):
            token = tokens[pos]
            if token is None:
                out.append((pos, True))
            elif token == c:
                out.append((pos + 1, False))
        return out

    def done(tokens: list[str | None], pos: int, inside: bool) -> bool:
        return (inside and pos + 1 == len(tokens)) or (not inside and pos == len(tokens))

    while todo:
        pa, ia, pb, ib = todo.pop()
        if done(ta, pa, ia) and done(tb, pb, ib):
            return True
        for c in alphabet:
            for na, nia in steps(ta, pa, ia, c):
                for nb, nib in steps(tb, pb, ib, c):
                    state = (na, nia, nb, nib)
                    if state not in seen:
                        seen.add(state)
                        todo.append(state)
    return False


def spaces_overlap(a: KeySpace, b: KeySpace) -> bool:
    """Whether some key lies in both key spaces (every shared attribute must overlap: some
    alternative of one with some alternative of the other)."""
    return all(
        any(templates_overlap(x, y) for x in alternatives(a[name]) for y in alternatives(b[name]))
        for name in a.keys() & b.keys()
    )


def is_number(text: str) -> bool:
    """Whether a key text parsed back for an N attribute is a number DynamoDB takes (a key
    it refuses, read or written, would fail the whole batch it is in, on every retry), in
    the one spelling DynamoDB gives back. Forward embeds that spelling, so SERVER#1.0 or
    SERVER#01 is no server's: taken for server 1, it would overwrite that server."""
    if not PLAIN_NUMBER.fullmatch(text):
        return False
    # positional, so the significant digits are the text's own, less the zeros around them
    # (DynamoDB takes up to 38, magnitudes 1E-130 to 9.99...E+125)
    digits = text.lstrip("-").replace(".", "").strip("0")
    return len(digits) <= 38 and (text == "0" or -130 <= Decimal(text).adjusted() <= 125)
