"""What an import writes: the fields of each record type, and how a cell becomes a value.

Each record type has the fields a column can be mapped to, the columns its rows
are staged in, and the dedupe keys it offers (email for contacts, domain for
companies, and any custom field). Values are checked in Python (the same rules
as the API) so a bad cell skips its row with a reason instead of failing a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from email_validator import EmailNotValidError, validate_email

from orbit.platform import validation
from orbit.platform.crm.companies import normalize_domain
from orbit.platform.crm.custom_fields import normalised
from orbit.platform.errors import InvalidInputError
from orbit.platform.search.normalize import contact_search_document, fold, search_document

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from orbit.platform.crm.schemas import CustomFieldOut

OBJECT_TYPES = ("contact", "company", "deal")
TABLES = {"contact": "contacts", "company": "companies", "deal": "deals"}
PLURAL = {"contact": "contacts", "company": "companies", "deal": "deals"}
CUSTOM = "custom."


@dataclass(frozen=True, slots=True)
class Target:
    """One field an import column can be mapped to."""

    name: str
    label: str
    aliases: tuple[str, ...] = ()


TARGETS: dict[str, tuple[Target, ...]] = {
    "contact": (
        Target("first_name", "First name", ("first", "firstname", "given name", "forename")),
        Target("last_name", "Last name", ("last", "lastname", "surname", "family name")),
        Target("email", "Email", ("e-mail", "email address", "mail", "e-mail address")),
        Target("phone", "Phone", ("telephone", "phone number", "mobile", "tel", "cell")),
        Target("company_name", "Company", ("company", "organization", "organisation", "account")),
        Target("tags", "Tags (comma-separated)", ("tag", "labels")),
        Target("owner_email", "Owner (member's email)", ("owner", "assigned to")),
    ),
    "company": (
        Target("name", "Name", ("company", "company name", "organization", "organisation")),
        Target("domain", "Domain", ("website", "web", "url", "site")),
        Target("industry", "Industry", ("sector",)),
        Target("size", "Size", ("employees", "company size")),
        Target("address", "Address", ("street", "location")),
        Target("phone", "Phone", ("telephone", "phone number", "tel")),
        Target("tags", "Tags (comma-separated)", ("tag", "labels")),
        Target("owner_email", "Owner (member's email)", ("owner", "assigned to")),
    ),
    "deal": (
        Target("title", "Title", ("deal", "deal name", "name", "opportunity")),
        Target("amount", "Amount", ("value", "deal value", "price")),
        Target("currency", "Currency", ("ccy",)),
        Target("expected_close_date", "Expected close", ("close date", "expected close date")),
        Target("stage", "Stage (name)", ("deal stage", "pipeline stage")),
        Target("company_name", "Company", ("company", "organization", "organisation", "account")),
        Target("owner_email", "Owner (member's email)", ("owner", "assigned to")),
    ),
}
STANDARD_KEYS = {"contact": ("email",), "company": ("domain",), "deal": ()}
"""Standard fields an import can match existing records by (custom fields come on top)."""

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "contact": (
        ("first_name", "varchar(100)"),
        ("last_name", "varchar(100)"),
        ("email", "varchar(320)"),
        ("phone", "varchar(50)"),
        ("company_id", "uuid"),
        ("owner_id", "uuid"),
        ("tags", "varchar(50)[]"),
        ("custom", "jsonb"),
        ("search_text", "text"),
    ),
    "company": (
        ("name", "varchar(200)"),
        ("domain", "varchar(253)"),
        ("industry", "varchar(100)"),
        ("size", "varchar(20)"),
        ("address", "text"),
        ("phone", "varchar(50)"),
        ("owner_id", "uuid"),
        ("tags", "varchar(50)[]"),
        ("custom", "jsonb"),
        ("search_text", "text"),
    ),
    "deal": (
        ("pipeline_id", "uuid"),
        ("stage_id", "uuid"),
        ("title", "varchar(200)"),
        ("amount", "numeric(18,4)"),
        ("currency", "varchar(3)"),
        ("expected_close_date", "date"),
        ("owner_id", "uuid"),
        ("company_id", "uuid"),
        ("status", "varchar(10)"),
        ("closed_at", "timestamptz"),
        ("custom", "jsonb"),
        ("search_text", "text"),
    ),
}
"""The record columns an import writes, staged in this order (``custom`` as JSON text)."""

MAX_DECIMALS = 4
SIZES = ("1-10", "11-50", "51-200", "201-1000", "1001+")
_SIMPLE_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SPLIT = re.compile(r"\s*[,;]\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class CellError(ValueError):
    """A cell that cannot be imported; the message names the field."""


def column_key(heading: str) -> str:
    """A heading as remembered mappings and suggestions compare it (folded, spaces single)."""
    return " ".join(re.sub(r"[_\-./]+", " ", fold(heading)).split())[:200]


def field_names(object_type: str, custom: list[CustomFieldOut]) -> dict[str, str]:
    """Every field a column can be mapped to, with its label."""
    names = {t.name: t.label for t in TARGETS[object_type]}
    names.update({f"{CUSTOM}{d.key}": d.label for d in custom if d.object_type == object_type})
    return names


def dedupe_keys(object_type: str, custom: list[CustomFieldOut]) -> list[str]:
    """Fields an import of ``object_type`` can match existing records by."""
    keys = list(STANDARD_KEYS[object_type])
    keys += [
        f"{CUSTOM}{d.key}"
        for d in custom
        if d.object_type == object_type and d.type in {"text", "email", "url", "number"}
    ]
    return keys


def suggest(
    object_type: str,
    columns: list[str],
    custom: list[CustomFieldOut],
    remembered: dict[str, str],
) -> dict[str, str]:
    """A suggested mapping ``{column: field}``: remembered first, then names and aliases."""
    names = field_names(object_type, custom)
    lookup: dict[str, str] = {}
    for target in TARGETS[object_type]:
        for alias in (target.name, target.label, *target.aliases):
            lookup.setdefault(column_key(alias), target.name)
    for definition in custom:
        if definition.object_type == object_type:
            for alias in (definition.key, definition.label):
                lookup.setdefault(column_key(alias), f"{CUSTOM}{definition.key}")
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        key = column_key(column)
        found = remembered.get(key) or lookup.get(key)
        if found and found in names and found not in taken:
            chosen[column] = found
            taken.add(found)
    return chosen


def email(value: str) -> str:
    """An address normalised like the API does (the domain lower-cased)."""
    if _SIMPLE_EMAIL.match(value):
        local, _, domain = value.rpartition("@")
        return f"{local}@{domain.lower()}"
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise CellError(f"email: {value!r} is not a valid email address ({exc})") from None


def text(value: str, name: str, limit: int) -> str:
    """Trimmed text without control characters, at most ``limit`` characters."""
    if len(value) > limit:
        raise CellError(f"{name}: must be at most {limit} characters (got {len(value)})")
    if _CONTROL.search(value):
        raise CellError(f"{name}: control characters are not allowed")
    return value


def tags(value: str) -> list[str]:
    """Tags separated by commas or semicolons, each at most 50 characters."""
    return sorted({text(tag, "tags", 50) for tag in _SPLIT.split(value) if tag})


def amount(value: str) -> Decimal:
    """A deal amount: ≥ 0, at most 4 decimals (``1,234.50`` and ``1 234,50`` read too)."""
    cleaned = value.replace("\u00a0", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    cleaned = cleaned.replace(",", "")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise CellError(f"amount: {value!r} is not a number") from None
    if not number.is_finite() or number < 0 or number >= Decimal(10) ** 14:
        raise CellError(f"amount: {value!r} must be between 0 and 99,999,999,999,999")
    if number.as_tuple().exponent < -MAX_DECIMALS:  # type: ignore[operator]
        raise CellError(f"amount: {value!r} has more than 4 decimals")
    return number


def iso_date(value: str, name: str) -> date:
    """A date like 2027-03-31."""
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise CellError(f"{name}: {value!r} is not a date like 2027-03-31") from None


def custom_value(definition: CustomFieldOut, value: str) -> Any:
    """A custom cell in its field's stored form (a multi-select splits at commas)."""
    problems = validation.FieldProblems()
    given: Any = _SPLIT.split(value) if definition.type == "multi_select" else value
    checked = normalised(definition, given, f"{CUSTOM}{definition.key}", problems)
    if problems.fields:
        raise CellError("; ".join(f"{k}: {v}" for k, v in problems.fields.items()))
    return checked


def domain(value: str) -> str:
    """A company domain as the API stores it."""
    try:
        return normalize_domain(value)
    except InvalidInputError as exc:
        raise CellError(exc.message) from None


@dataclass
class Lookups:
    """What rows refer to by name, loaded once per job: members, stages, custom fields."""

    members: dict[str, UUID] = field(default_factory=dict)
    """Active members by lower-cased email."""
    stages: dict[str, tuple[UUID, UUID, str]] = field(default_factory=dict)
    """Stages of every pipeline by folded name: (pipeline id, stage id, kind)."""
    first_stage: tuple[UUID, UUID, str] | None = None
    custom: dict[str, CustomFieldOut] = field(default_factory=dict)
    """Custom fields of the record type by key."""


def cell_reader(target: str, lookups: Lookups) -> Callable[[str], tuple[str, Any]]:
    """A function turning one non-empty cell of ``target`` into (record key, value)."""
    if target.startswith(CUSTOM):
        definition = lookups.custom[target.removeprefix(CUSTOM)]
        return lambda v: (target, custom_value(definition, v))
    limits = {
        "first_name": 100,
        "last_name": 100,
        "phone": 50,
        "company_name": 200,
        "name": 200,
        "industry": 100,
        "address": 2000,
        "title": 200,
    }
    if target in limits:
        limit = limits[target]
        return lambda v: (target, text(v, target, limit))
    readers: dict[str, Callable[[str], tuple[str, Any]]] = {
        "email": lambda v: ("email", email(v)),
        "domain": lambda v: ("domain", domain(v)),
        "tags": lambda v: ("tags", tags(v)),
        "amount": lambda v: ("amount", amount(v)),
        "currency": lambda v: ("currency", _currency(v)),
        "expected_close_date": lambda v: ("expected_close_date", iso_date(v, target)),
        "size": lambda v: ("size", _size(v)),
        "owner_email": lambda v: ("owner_id", _member(lookups, v)),
        "stage": lambda v: ("stage", _stage(lookups, v)),
    }
    return readers[target]


def _currency(value: str) -> str:
    code = value.upper()
    if not _CURRENCY.match(code):
        raise CellError(f"currency: {value!r} is not a three-letter ISO 4217 code like EUR")
    return code


def _size(value: str) -> str:
    if value not in SIZES:
        raise CellError(f"size: {value!r} is not one of {', '.join(SIZES)}")
    return value


def _member(lookups: Lookups, value: str) -> UUID:
    found = lookups.members.get(value.lower())
    if found is None:
        raise CellError(f"owner_email: no member {value!r} in this workspace")
    return found


def _stage(lookups: Lookups, value: str) -> tuple[UUID, UUID, str]:
    found = lookups.stages.get(fold(value))
    if found is None:
        raise CellError(f"stage: no pipeline stage called {value!r} in this workspace")
    return found


def search_text(object_type: str, record: dict[str, Any], company_name: str | None) -> str:
    """The stored search text, exactly as the services write it (``*search_document``)."""
    parts: tuple[str | None, ...]
    if object_type == "contact":
        parts = (record["first_name"], record["last_name"], record["email"], company_name)
    elif object_type == "company":
        parts = (record["name"], record["domain"])
    else:
        parts = (record["title"],)
    joined = " ".join(part for part in parts if part)
    if joined.isascii():
        # What fold() makes of ASCII text (NFKC, marks and the letter table change nothing).
        return " ".join(joined.lower().split())
    if object_type == "contact":
        return contact_search_document(*parts)
    return search_document(*parts)
