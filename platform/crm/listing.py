"""Filters, sorting and keyset pages for the contact, company and deal lists (and saved views).

A filter is ``{"field": "last_name", "op": "contains", "value": "pap"}``; fields are
a record type's standard columns and its custom fields (``custom.<key>``), and each
field's kind decides which operators and values it takes:

| kind | operators | value |
|---|---|---|
| text | equals, contains, in, empty | text (``in``: a list); case-insensitive |
| number, date | equals, in, range, empty | ``range``: ``{"min": …, "max": …}``, inclusive |
| datetime | range, empty | as above |
| choice | equals, in, empty | one of the field's options |
| multi_choice, tags | contains (has the value), in (has any), empty | text |
| boolean | equals, empty | true or false |
| reference (an id) | equals, in, empty | an id |

``empty`` takes ``true`` (no value) or ``false`` (has a value). A malformed filter
is a 400 that names it (``filters[2].op``) and says what is wrong.

Sorting is by one field (``last_name`` ascending, ``-amount`` descending), ties
broken by id, empty values last; the cursor carries the sort key so keyset pages
work with any sort: each row comes exactly once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from orbit.platform.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orbit.platform.crm.schemas import CustomFieldOut

Kind = Literal[
    "text", "number", "date", "datetime", "choice", "multi_choice", "tags", "boolean", "reference"
]
Operator = Literal["equals", "contains", "in", "range", "empty"]
OPERATORS: dict[Kind, tuple[Operator, ...]] = {
    "text": ("equals", "contains", "in", "empty"),
    "number": ("equals", "in", "range", "empty"),
    "date": ("equals", "in", "range", "empty"),
    "datetime": ("range", "empty"),
    "choice": ("equals", "in", "empty"),
    "multi_choice": ("contains", "in", "empty"),
    "tags": ("contains", "in", "empty"),
    "boolean": ("equals", "empty"),
    "reference": ("equals", "in", "empty"),
}
SORTABLE: frozenset[Kind] = frozenset({"text", "number", "date", "datetime", "choice", "boolean"})
_CASTS: dict[Kind, str] = {
    "text": "text",
    "choice": "text",
    "number": "numeric",
    "date": "date",
    "datetime": "timestamptz",
    "boolean": "boolean",
}
MAX_FILTERS = 20
MAX_IN_VALUES = 100
MAX_TEXT = 200
DEFAULT_SORT = "-updated_at"
_CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_CUSTOM_KINDS: dict[str, Kind] = {
    "text": "text",
    "long_text": "text",
    "url": "text",
    "email": "text",
    "number": "number",
    "decimal": "number",
    "date": "date",
    "select": "choice",
    "multi_select": "multi_choice",
    "checkbox": "boolean",
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field a list can filter (and maybe sort) by."""

    name: str
    label: str
    kind: Kind
    sql: str
    """The value as a SQL expression over the list's table alias ``r``."""
    nullable: bool = True
    options: tuple[str, ...] = ()

    @property
    def sortable(self) -> bool:
        """Whether lists can be sorted by this field."""
        return self.kind in SORTABLE

    @property
    def sort_sql(self) -> str:
        """The sort key: text case-insensitively, empty text with the missing values."""
        if self.kind in {"text", "choice"}:
            return f"lower(nullif({self.sql}, ''))"
        return self.sql


def _std(name: str, label: str, kind: Kind, **extra: Any) -> FieldSpec:
    return FieldSpec(name=name, label=label, kind=kind, sql=f"r.{name}", **extra)


_COMMON = (
    _std("owner_id", "Owner", "reference"),
    _std("tags", "Tags", "tags", nullable=False),
    _std("created_at", "Created", "datetime", nullable=False),
    _std("updated_at", "Updated", "datetime", nullable=False),
)
STANDARD_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "contact": (
        _std("first_name", "First name", "text"),
        _std("last_name", "Last name", "text"),
        _std("email", "Email", "text"),
        _std("phone", "Phone", "text"),
        _std("company_id", "Company", "reference"),
        *_COMMON,
    ),
    "company": (
        _std("name", "Name", "text"),
        _std("domain", "Domain", "text"),
        _std("industry", "Industry", "text"),
        _std("size", "Size", "choice", options=("1-10", "11-50", "51-200", "201-1000", "1001+")),
        _std("address", "Address", "text"),
        _std("phone", "Phone", "text"),
        *_COMMON,
    ),
    "deal": (
        _std("title", "Title", "text"),
        _std("amount", "Amount", "number", nullable=False),
        _std("currency", "Currency", "text", nullable=False),
        _std("expected_close_date", "Expected close", "date"),
        _std("status", "Status", "choice", nullable=False, options=("open", "won", "lost")),
        _std("pipeline_id", "Pipeline", "reference", nullable=False),
        _std("stage_id", "Stage", "reference", nullable=False),
        _std("company_id", "Company", "reference"),
        _std("lost_reason", "Lost reason", "text"),
        _std("closed_at", "Closed", "datetime"),
        *(spec for spec in _COMMON if spec.name != "tags"),
    ),
}


def _custom_sql(key: str, kind: Kind) -> str:
    raw = f"(r.custom ->> '{key}')"
    if kind == "number":
        return f"(CASE WHEN {raw} ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN {raw}::numeric END)"
    if kind == "date":
        return f"(CASE WHEN {raw} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' THEN {raw}::date END)"
    if kind == "boolean":
        return f"(CASE {raw} WHEN 'true' THEN true WHEN 'false' THEN false END)"
    if kind == "multi_choice":
        return f"(r.custom -> '{key}')"
    return raw


def catalog(object_type: str, custom_fields: Sequence[CustomFieldOut]) -> dict[str, FieldSpec]:
    """Every field of ``object_type`` by name: standard ones, then ``custom.<key>``."""
    fields = {spec.name: spec for spec in STANDARD_FIELDS[object_type]}
    for definition in custom_fields:
        if definition.object_type != object_type or not _CUSTOM_KEY.match(definition.key):
            continue
        kind = _CUSTOM_KINDS[definition.type]
        name = f"custom.{definition.key}"
        fields[name] = FieldSpec(
            name=name,
            label=definition.label,
            kind=kind,
            sql=_custom_sql(definition.key, kind),
            options=tuple(definition.options),
        )
    return fields


@dataclass(frozen=True, slots=True)
class Filter:
    """One checked condition."""

    field: str
    op: Operator
    value: Any


@dataclass(frozen=True, slots=True)
class Sort:
    """One field and a direction."""

    field: str
    descending: bool

    def __str__(self) -> str:
        """``field`` or ``-field`` (descending), as the API writes it."""
        return ("-" if self.descending else "") + self.field


@dataclass
class _Problems:
    fields: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, reason: str) -> None:
        self.fields.setdefault(name, reason)

    def raise_any(self) -> None:
        if self.fields:
            summary = "; ".join(f"{name}: {reason}" for name, reason in self.fields.items())
            raise InvalidInputError(f"malformed filter: {summary}", fields=dict(self.fields))


def parse_filters(raw: Any, fields: dict[str, FieldSpec], name: str = "filters") -> list[Filter]:
    """Check filters given as a list of ``{"field", "op", "value"}`` (or as JSON text).

    A 400 names each bad one: ``filters[1].field: no field 'colour' …``.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except ValueError:
            reason = (
                'must be a JSON list like [{"field": "last_name", "op": "contains", "value": "x"}]'
            )
            raise InvalidInputError(f"{name} {reason}", fields={name: reason}) from None
    if raw is None:
        return []
    if not isinstance(raw, list):
        reason = "must be a list of filters"
        raise InvalidInputError(f"{name} {reason}", fields={name: reason})
    if len(raw) > MAX_FILTERS:
        reason = f"must have at most {MAX_FILTERS} filters"
        raise InvalidInputError(f"{name} {reason}", fields={name: reason})
    problems = _Problems()
    checked = [
        one
        for index, item in enumerate(raw)
        if (one := _one_filter(item, fields, f"{name}[{index}]", problems)) is not None
    ]
    problems.raise_any()
    return checked


def _one_filter(
    item: Any, fields: dict[str, FieldSpec], where: str, problems: _Problems
) -> Filter | None:
    if not isinstance(item, dict) or not isinstance(item.get("field"), str):
        problems.add(where, 'must be an object like {"field": …, "op": …, "value": …}')
        return None
    unknown = set(item) - {"field", "op", "value"}
    if unknown:
        problems.add(where, f"unknown key {min(unknown)!r}")
        return None
    spec = fields.get(item["field"])
    if spec is None:
        known = ", ".join(sorted(fields))
        problems.add(f"{where}.field", f"no field {item['field']!r} here; fields: {known}")
        return None
    op = item.get("op")
    if op not in OPERATORS[spec.kind]:
        allowed = ", ".join(OPERATORS[spec.kind])
        problems.add(
            f"{where}.op",
            f"{op!r} is not an operator for {spec.name} ({spec.kind}); use one of {allowed}",
        )
        return None
    try:
        value = _checked_value(spec, op, item.get("value", True if op == "empty" else None))
    except ValueError as exc:
        problems.add(f"{where}.value", f"{spec.name} {op}: {exc}")
        return None
    return Filter(field=spec.name, op=op, value=value)


def parse_sort(raw: str | None, fields: dict[str, FieldSpec], name: str = "sort") -> Sort:
    """``last_name`` or ``-amount`` (descending); a 400 naming ``sort`` when unusable."""
    text = (raw or "").strip() or DEFAULT_SORT
    descending = text.startswith("-")
    spec = fields.get(text.removeprefix("-"))
    if spec is None or not spec.sortable:
        sortable = ", ".join(sorted(n for n, s in fields.items() if s.sortable))
        reason = f"cannot sort by {text!r}; sortable fields: {sortable}"
        raise InvalidInputError(f"{name}: {reason}", fields={name: reason})
    return Sort(field=spec.name, descending=descending)


def parse_columns(raw: Any, fields: dict[str, FieldSpec], name: str = "columns") -> list[str]:
    """Column names (a list, or comma-separated text) that must all be fields."""
    names = [c.strip() for c in raw.split(",")] if isinstance(raw, str) else raw or []
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise InvalidInputError(
            f"{name} must be a list of field names", fields={name: "not a list"}
        )
    unknown = [c for c in names if c and c not in fields]
    if unknown:
        reason = f"no field {unknown[0]!r} here"
        raise InvalidInputError(f"{name}: {reason}", fields={name: reason})
    return list(dict.fromkeys(c for c in names if c))[:30]


def _scalar(spec: FieldSpec, value: Any) -> Any:
    """One value in the field's kind; ``ValueError`` says what is wrong."""
    if value is None or isinstance(value, list | dict):
        msg = "needs a single value"
        raise ValueError(msg)
    if spec.kind == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in {"true", "false"}:
            return str(value).strip().lower() == "true"
        msg = f"{value!r} is not true or false"
        raise ValueError(msg)
    if isinstance(value, bool):
        msg = f"{value!r} is not a {spec.kind}"
        raise ValueError(msg)  # noqa: TRY004 - reported as a 400 naming the filter
    text = str(value).strip()
    parse = _PARSERS.get(spec.kind)
    if parse is not None:
        return parse(text)
    if not text or len(text) > MAX_TEXT or any(ch < " " for ch in text):
        msg = f"must be 1 to {MAX_TEXT} characters of text"
        raise ValueError(msg)
    if spec.kind == "choice" and spec.options and text not in spec.options:
        msg = f"{text!r} is not one of: {', '.join(spec.options)}"
        raise ValueError(msg)
    return text


def _number(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        msg = f"{text!r} is not a number"
        raise ValueError(msg)
    return number


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"{text!r} is not a date like 2027-03-31"
        raise ValueError(msg) from None


def _datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{text!r} is not a time like 2027-03-31T12:00:00Z"
        raise ValueError(msg) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _reference(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        msg = f"{text!r} is not an id"
        raise ValueError(msg) from None


_PARSERS: dict[Kind, Callable[[str], Any]] = {
    "number": _number,
    "date": _date,
    "datetime": _datetime,
    "reference": _reference,
}


def _checked_value(spec: FieldSpec, op: Operator, value: Any) -> Any:
    if op == "empty":
        return _scalar(FieldSpec("", "", "boolean", ""), value)
    if op == "in":
        values = value if isinstance(value, list) else None
        if not values or len(values) > MAX_IN_VALUES:
            msg = f"needs a list of 1 to {MAX_IN_VALUES} values"
            raise ValueError(msg)
        return [_scalar(spec, item) for item in values]
    if op == "range":
        if not isinstance(value, dict) or not set(value) <= {"min", "max"}:
            msg = 'needs {"min": …, "max": …} (either may be left out)'
            raise ValueError(msg)
        bounds = {k: _scalar(spec, v) for k, v in value.items() if v not in (None, "")}
        if not bounds:
            msg = "needs a min, a max or both"
            raise ValueError(msg)
        if len(bounds) == 2 and bounds["min"] > bounds["max"]:  # noqa: PLR2004 - min and max
            msg = "min is above max"
            raise ValueError(msg)
        return bounds
    return _scalar(spec, value)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_conditions(
    filters: Sequence[Filter], fields: dict[str, FieldSpec], args: list[Any]
) -> list[str]:
    """SQL conditions for checked ``filters`` (their values appended to ``args``)."""

    def arg(value: Any, cast: str) -> str:
        args.append(value)
        return f"${len(args)}::{cast}"

    conditions = []
    for item in filters:
        spec = fields[item.field]
        if item.op == "empty":
            conditions.append(_empty(spec, is_empty=item.value))
        elif spec.kind in {"tags", "multi_choice"}:
            conditions.append(_has(spec, item, arg))
        elif spec.kind == "text":
            conditions.append(_text(spec, item, arg))
        else:
            conditions += _compare(spec, item, arg)
    return conditions


def _empty(spec: FieldSpec, *, is_empty: bool) -> str:
    expr = spec.sql
    blank = {
        "text": f"({expr} IS NULL OR {expr} = '')",
        "tags": f"coalesce(cardinality({expr}), 0) = 0",
        "multi_choice": f"({expr} IS NULL OR {expr} = '[]'::jsonb)",
    }.get(spec.kind, f"{expr} IS NULL")
    return blank if is_empty else f"NOT {blank}"


def _has(spec: FieldSpec, item: Filter, arg: Callable[[Any, str], str]) -> str:
    """Tags (an array) or a multi-select (a JSON array): has the value, or any of them."""
    if spec.kind == "tags":
        if item.op == "contains":
            return f"{arg(item.value, 'varchar')} = ANY({spec.sql})"
        return f"{spec.sql} && {arg(item.value, 'varchar[]')}"
    if item.op == "contains":
        return f"{spec.sql} @> jsonb_build_array({arg(item.value, 'text')})"
    return f"{spec.sql} ?| {arg(item.value, 'text[]')}"


def _text(spec: FieldSpec, item: Filter, arg: Callable[[Any, str], str]) -> str:
    if item.op == "contains":
        return f"{spec.sql} ILIKE {arg(f'%{_escape_like(item.value)}%', 'text')}"
    if item.op == "equals":
        return f"lower({spec.sql}) = lower({arg(item.value, 'text')})"
    return f"lower({spec.sql}) = ANY({arg([v.lower() for v in item.value], 'text[]')})"


def _compare(spec: FieldSpec, item: Filter, arg: Callable[[Any, str], str]) -> list[str]:
    cast = _CASTS.get(spec.kind, "uuid")
    if item.op == "equals":
        return [f"{spec.sql} = {arg(item.value, cast)}"]
    if item.op == "in":
        return [f"{spec.sql} = ANY({arg(item.value, cast + '[]')})"]
    bounds = []
    if "min" in item.value:
        bounds.append(f"{spec.sql} >= {arg(item.value['min'], cast)}")
    if "max" in item.value:
        bounds.append(f"{spec.sql} <= {arg(item.value['max'], cast)}")
    return bounds


def order_by(sort: Sort, fields: dict[str, FieldSpec]) -> str:
    """``ORDER BY`` for ``sort``: empty values last, ties by id in the same direction."""
    spec = fields[sort.field]
    direction = "DESC" if sort.descending else "ASC"
    nulls = f"({spec.sort_sql} IS NULL), " if spec.nullable else ""
    return f"ORDER BY {nulls}{spec.sort_sql} {direction}, r.id {direction}"


def sort_key_sql(sort: Sort, fields: dict[str, FieldSpec]) -> str:
    """The sort key as a select-list expression (``… AS sort_key``)."""
    return f"{fields[sort.field].sort_sql} AS sort_key"


def encode_sort_cursor(sort: Sort, key: Any, record_id: UUID) -> str:
    """An opaque cursor: the sort it belongs to, the last row's sort key and id."""
    value = None if key is None else key.isoformat() if hasattr(key, "isoformat") else str(key)
    raw = json.dumps({"s": str(sort), "k": value, "i": str(record_id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def keyset_condition(sort: Sort, fields: dict[str, FieldSpec], cursor: str, args: list[Any]) -> str:
    """The rows after ``cursor`` in ``sort`` order; a 400 naming ``cursor`` if it is not one."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        record_id = UUID(raw["i"])
        same_sort = raw["s"] == str(sort)
        key = raw["k"]
        spec = fields[sort.field]
        if key is not None and spec.kind in {"text", "choice"}:
            key = str(key)  # any text, the empty one too
        elif key is not None:
            _scalar(spec, key)  # a readable value of the field's kind
    except (ValueError, TypeError, KeyError, binascii.Error):
        same_sort = False
    if not same_sort:
        raise InvalidInputError(
            "cursor is not valid for this list and sort; use next_cursor from the previous page",
            fields={"cursor": "is not a cursor Orbit returned for this sort"},
        )
    after = "<" if sort.descending else ">"
    args.append(record_id)
    id_arg = f"${len(args)}"
    if key is None:
        return f"({spec.sort_sql} IS NULL AND r.id {after} {id_arg}::uuid)"
    args.append(key)
    key_arg = f"${len(args)}::text::{_CASTS[spec.kind]}"
    if spec.kind in {"text", "choice"}:
        key_arg = f"lower({key_arg})"
    beyond = f"({spec.sort_sql}, r.id) {after} ({key_arg}, {id_arg}::uuid)"
    if not spec.nullable:
        return beyond
    if not sort.descending:
        # One row comparison in the order's own terms, so an index on
        # ((key IS NULL), key, id) can start right at the cursor.
        key = spec.sort_sql
        return f"(({key}) IS NULL, {key}, r.id) > (false, {key_arg}, {id_arg}::uuid)"
    return f"({spec.sort_sql} IS NULL OR {beyond})"
