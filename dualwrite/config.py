"""The migration file: YAML validated by pydantic; every problem is one clear line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from dualwrite.errors import ConfigError
from dualwrite.estimate import READ_USD_PER_MILLION, WRITE_USD_PER_MILLION, Prices
from dualwrite.jsondoc import JsonObject
from dualwrite.mapping import BUILTIN, DeclarativeSpec, MappingSpec, known_key_space
from dualwrite.mapping.templates import describe_space, spaces_overlap

KeyType = Literal["S", "N", "B"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: the tag pydantic puts in an error's location for a declarative mapping; _loc leaves it out
_DECLARATIVE = "declarative"


#: the other tag, for a mapping's name
_NAMED = "name"


def _mapping_kind(value: Any) -> str:
    return _DECLARATIVE if isinstance(value, dict | DeclarativeSpec) else _NAMED


def _mapping_name(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ValueError(
            "must be a mapping's name (identity, servers, memberships, package.module:Class) "
            f"or a declarative mapping (key:, set:, rename:, drop:), not {value!r}"
        )
    return value


#: what DynamoDB takes as a table or index name (CreateTable refuses anything else, after
#: prepare had already turned on streams and taken backups)
DYNAMODB_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


def _dynamodb_name(value: str) -> str:
    if not DYNAMODB_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a name DynamoDB takes (3 to 255 of letters, digits, _ . -)"
        )
    return value


DynamoName = Annotated[str, AfterValidator(_dynamodb_name)]
#: global secondary indexes per table (AWS's default quota)
MAX_GSIS = 20


class Route(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    source: DynamoName
    target: DynamoName
    #: a mapping's name, or a declarative mapping (section 11)
    mapping: Annotated[
        Annotated[str, BeforeValidator(_mapping_name), Tag(_NAMED)]
        | Annotated[DeclarativeSpec, Tag(_DECLARATIVE)],
        Discriminator(_mapping_kind),
    ]

    @field_validator("mapping")
    @classmethod
    def _mapping_known(cls, value: MappingSpec) -> MappingSpec:
        if isinstance(value, DeclarativeSpec):
            return value
        if value not in BUILTIN and ":" not in value:
            raise ValueError(
                f"unknown mapping {value!r}: use one of {', '.join(BUILTIN)} "
                "or a custom 'package.module:attribute'"
            )
        return value


def _key_dict(value: dict[str, str]) -> dict[str, str]:
    if not 1 <= len(value) <= 2:
        raise ValueError("a key has a hash attribute and at most one range attribute")
    return value


class Index(_Strict):
    name: DynamoName
    key: dict[str, KeyType]
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"

    _check_key = field_validator("key")(classmethod(lambda cls, v: _key_dict(v)))


class Target(_Strict):
    key: dict[str, KeyType]
    indexes: list[Index] = Field(default_factory=list)
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST"
    deletion_protection: bool = False

    _check_key = field_validator("key")(classmethod(lambda cls, v: _key_dict(v)))

    @model_validator(mode="after")
    def _indexes_fit(self) -> Target:
        """What CreateTable would refuse, said before prepare writes anything: an attribute
        has one type across the key and every index (the last one declared used to win:
        SK: N in an index made the table's own SK a number), index names are unique, and a
        table has at most MAX_GSIS global indexes."""
        if len(self.indexes) > MAX_GSIS:
            raise ValueError(f"indexes: at most {MAX_GSIS} per table, got {len(self.indexes)}")
        names = [i.name for i in self.indexes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"indexes: names must be unique, repeated: {', '.join(dupes)}")
        types = dict(self.key)
        for n, index in enumerate(self.indexes):
            for attr, typ in index.key.items():
                if types.setdefault(attr, typ) != typ:
                    raise ValueError(
                        f"indexes[{n}].key.{attr}: {typ}, but {attr} is {types[attr]} "
                        "elsewhere in this table (an attribute has one type)"
                    )
        return self


def _json_mapping(value: Any) -> JsonObject:
    """A JSON object: Lambda events and `expect` go over the wire as JSON."""
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping, not {type(value).__name__}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"must be plain JSON data ({exc})") from None
    return value


class SmokeTest(_Strict):
    """One function invoked right after the switch (DESIGN.md section 10)."""

    function: str = Field(min_length=1)
    event: dict[str, Any]
    #: a subset the response JSON must contain; None: only "no FunctionError"
    expect: dict[str, Any] | None = None

    _check_event = field_validator("event", mode="before")(
        classmethod(lambda cls, v: _json_mapping(v))
    )

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_mapping(cls, value: Any) -> Any:
        return None if value is None else _json_mapping(value)


class Cutover(_Strict):
    functions: list[str] = Field(default_factory=list)
    discover: bool = False
    observation_days: float = Field(default=7, ge=0)
    max_reconcile_age_minutes: float = Field(default=15, gt=0)
    max_lag_seconds: float = Field(default=60, ge=0)
    smoke_tests: list[SmokeTest] = Field(default_factory=list)
    #: watch this long after the switch (0: no watch; watch_alarms are then only checked
    #: before the switch); a day at most, where one-minute periods still fit one call
    watch_seconds: int = Field(default=0, ge=0, le=86400)
    watch_alarms: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list
    )
    #: section 8 (reverse replication); None: the longest Timeout of the re-pointed functions
    overlap_seconds: int | None = Field(default=None, ge=0)
    reverse: bool = True


class Pricing(_Strict):
    """On-demand request prices, USD per million request units, for plan's cost estimate
    (default: us-east-1 list prices, see dualwrite.estimate)."""

    write_usd_per_million: float = Field(default=WRITE_USD_PER_MILLION, ge=0)
    read_usd_per_million: float = Field(default=READ_USD_PER_MILLION, ge=0)

    def prices(self) -> Prices:
        return Prices(self.write_usd_per_million, self.read_usd_per_million)


class Migration(_Strict):
    control_table: DynamoName = "dualwrite-control"
    metrics_namespace: str = Field(default="DualWrite", min_length=1)
    cognito_user_pool_id: str | None = None
    routes: list[Route] = Field(min_length=1)
    targets: dict[str, Target] = Field(default_factory=dict)
    cutover: Cutover = Field(default_factory=Cutover)
    pricing: Pricing = Field(default_factory=Pricing)

    @model_validator(mode="after")
    def _consistent(self) -> Migration:
        names = [r.name for r in self.routes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route names must be unique, repeated: {', '.join(dupes)}")
        sources = [r.source for r in self.routes]
        dupes = sorted({s for s in sources if sources.count(s) > 1})
        if dupes:
            raise ValueError(f"each source table feeds one route, repeated: {', '.join(dupes)}")
        for route in self.routes:
            if self.control_table in (route.source, route.target):
                side = "source" if route.source == self.control_table else "target"
                raise ValueError(
                    f"route {route.name}: {side} {self.control_table} is the control table "
                    "(dualwrite's own records): name another control_table"
                )
            if route.target in sources:
                raise ValueError(f"route {route.name}: target {route.target} is also a source")
        for name in self.targets:
            if name not in {r.target for r in self.routes}:
                raise ValueError(f"targets.{name}: no route writes to this table")
        self._key_spaces_apart()
        return self

    def _key_spaces_apart(self) -> None:
        """Routes sharing a target must not be able to write the same key (section 11)."""
        self._builtins_apart()
        for i, route in enumerate(self.routes):
            if not isinstance(route.mapping, DeclarativeSpec):
                continue  # builtins: _builtins_apart; custom classes: prepare's check
            mine = route.mapping.templates
            for other in self.routes:
                if other is route or other.target != route.target:
                    continue
                theirs = known_key_space(other.mapping)
                if theirs is None or not spaces_overlap(mine, theirs):
                    continue
                if isinstance(other.mapping, DeclarativeSpec) and self.routes.index(other) > i:
                    continue  # reported once, at the later route
                raise ValueError(
                    f"routes[{i}].mapping.key: route {route.name} could write keys "
                    f"({describe_space(mine)}) that route {other.name} owns on {route.target} "
                    f"({describe_space(theirs)})"
                )

    def _builtins_apart(self) -> None:
        """Builtin mappings on one target: their key spaces are known too. servers and
        memberships share CoreTable; identity owns every key of its target, so another route
        on it was accepted and one route's `reconcile --repair` deleted the other's items as
        extra."""
        for j, later in enumerate(self.routes):
            if isinstance(later.mapping, DeclarativeSpec):
                continue
            theirs = known_key_space(later.mapping)
            if theirs is None:
                continue
            for earlier in self.routes[:j]:
                if earlier.target != later.target or isinstance(earlier.mapping, DeclarativeSpec):
                    continue
                mine = known_key_space(earlier.mapping)
                if mine is not None and spaces_overlap(mine, theirs):
                    raise ValueError(
                        f"routes[{j}].mapping: route {later.name} ({later.mapping}) could write "
                        f"keys ({describe_space(theirs)}) that route {earlier.name} "
                        f"({earlier.mapping}) writes on {later.target} ({describe_space(mine)}): "
                        "routes that share a target need key spaces apart"
                    )

    def route(self, name: str) -> Route:
        for r in self.routes:
            if r.name == name:
                return r
        raise ConfigError(
            f"no route named {name!r} (routes: {', '.join(r.name for r in self.routes)})"
        )

    def routes_named(self, name: str | None) -> list[Route]:
        return list(self.routes) if name is None else [self.route(name)]

    def route_for_source(self, table: str) -> Route | None:
        for r in self.routes:
            if r.source == table:
                return r
        return None


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if part in (_DECLARATIVE, _NAMED) and i and loc[i - 1] == "mapping":
            continue  # the union's tag, not a key of the file
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_migration(data: Any, origin: str = "migration file") -> Migration:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys at the top level")
    try:
        return Migration.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # an unknown key first: a misspelt one (`mappin:`) also makes its right spelling
        # "Field required", and the typo is what the user needs to see
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        where = _loc(tuple(err["loc"]))
        if not err["loc"] and msg.startswith("routes["):
            where, _, msg = msg.partition(": ")  # a check across routes that names its key
        raise ConfigError(f"{origin}: {where}: {msg}{more}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that names a key twice: plain safe_load keeps
    the last value, so a second `routes:` silently dropped the first one's routes."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: the base's keys
                continue  # may be overridden here, as YAML means them to be
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: construct_mapping names it below
                break
            if duplicate:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{key!r} is given twice in the same mapping (keep one)",
                    mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_migration(path: str | Path) -> Migration:
    """Read and validate a migration file; raises ConfigError with one clear line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"migration file {p} not found (pass --config FILE, e.g. migrations/coretable.yaml)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"migration file {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"migration file {p}: not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{p}: not valid YAML{where}: {problem}") from None
    return parse_migration(data, str(p))
