"""Custom fields: per-workspace definitions, and checking record values against them.

Contacts, companies and deals keep their custom values in their ``custom`` jsonb.
A workspace defines fields per object type; values under a defined key are
validated and normalised by its type on every write, and required fields must be
present whenever ``custom`` is written (on create, and on an update that sends
``custom``). Keys no definition names stay free-form, as before custom fields
existed (an integration may keep its own data there). Removing a definition keeps
the values in the records; they become free-form again.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg
import msgspec

from orbit.platform import validation
from orbit.platform.audit.log import Action, record
from orbit.platform.crm.schemas import CustomFieldCreate, CustomFieldOut, CustomFieldPatch
from orbit.platform.errors import ConflictError, InvalidInputError, NotFoundError
from orbit.platform.ids import new_id
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

OBJECT_TYPES = ("contact", "company", "deal")
CHOICE_TYPES = frozenset({"select", "multi_select"})
MAX_FIELDS_PER_TYPE = 100
MAX_TEXT = 500
MAX_LONG_TEXT = 10_000
MAX_URL = 2_000
MAX_DECIMAL_DIGITS = 30
MAX_NUMBER = 2**53 - 1  # the largest integer every JSON reader keeps exact
FILTER_PREFIX = "custom."
_READ_SCOPES = {
    "contact": Scope.CONTACTS_READ,
    "company": Scope.COMPANIES_READ,
    "deal": Scope.DEALS_READ,
}
_INTEGER = re.compile(r"^[+-]?\d{1,16}$")
_LONG_TEXT_CONTROLS = frozenset("\n\r\t")


def field_out(row: Any) -> CustomFieldOut:
    """A database row as the API's custom field."""
    options = row["options"]
    return CustomFieldOut(
        id=row["id"],
        object_type=row["object_type"],
        key=row["key"],
        label=row["label"],
        type=row["type"],
        options=list(json.loads(options) if isinstance(options, str) else options or []),
        required=row["required"],
        position=row["position"],
        created_at=row["created_at"],
    )


class CustomFieldService:
    """Custom field definitions of one workspace; admins change them, readers see them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def find(
        self, ctx: TenantContext, object_type: str | None = None
    ) -> list[CustomFieldOut]:
        """Definitions in form order, of one object type or of all three.

        Anyone who may read an object type may see its definitions: forms and API
        clients need them to send valid values.
        """
        types = [_object_type(object_type)] if object_type is not None else list(OBJECT_TYPES)
        visible = [t for t in types if _READ_SCOPES[t] in ctx.scopes]
        if object_type is not None and not visible:
            ctx.require(_READ_SCOPES[types[0]])
        return await self.definitions(ctx, visible)

    async def definitions(
        self, ctx: TenantContext, object_types: list[str]
    ) -> list[CustomFieldOut]:
        """Definitions of ``object_types`` without a permission check (callers did it)."""
        rows = await self.db.fetch(
            "SELECT * FROM custom_fields WHERE tenant_id = $1 AND object_type = ANY($2::text[]) "
            "ORDER BY object_type, position, created_at",
            ctx.tenant_id,
            object_types,
        )
        return [field_out(row) for row in rows]

    async def get(self, ctx: TenantContext, field_id: UUID) -> CustomFieldOut:
        """One definition; 404 when it is not in this workspace."""
        row = await self.db.fetchrow(
            "SELECT * FROM custom_fields WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, field_id
        )
        if row is None or _READ_SCOPES[row["object_type"]] not in ctx.scopes:
            raise NotFoundError(f"custom field {field_id} not found in this workspace")
        return field_out(row)

    async def create(self, ctx: TenantContext, data: CustomFieldCreate) -> CustomFieldOut:
        """Define a field; a 409 naming ``key`` when the object type already has it."""
        ctx.require(Scope.CUSTOM_FIELDS_WRITE)
        problems = validation.FieldProblems()
        label = problems.check(validation.text, data.label, "label", max_length=100, required=True)
        options = _checked_options(problems, data.type, data.options)
        count = await self.db.fetchval(
            "SELECT count(*) FROM custom_fields WHERE tenant_id = $1 AND object_type = $2",
            ctx.tenant_id,
            data.object_type,
        )
        if count >= MAX_FIELDS_PER_TYPE:
            problems.add("object_type", f"has the maximum of {MAX_FIELDS_PER_TYPE} custom fields")
        problems.raise_any()
        try:
            row = await self.db.fetchrow(
                """
                INSERT INTO custom_fields (tenant_id, id, object_type, key, label, type, options,
                                           required, position)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9) RETURNING *
                """,
                ctx.tenant_id,
                new_id(),
                data.object_type,
                data.key,
                label,
                data.type,
                json.dumps(options),
                data.required,
                count if data.position is None else data.position,
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError(
                f"this workspace already has a {data.object_type} field with key {data.key!r}",
                fields={"key": "is already used by another field of this object type"},
            ) from None
        field = field_out(row)
        await self._audit(ctx, "create", None, field)
        return field

    async def update(
        self, ctx: TenantContext, field_id: UUID, patch: CustomFieldPatch
    ) -> CustomFieldOut:
        """Change the label, options, required flag or position (key and type stay)."""
        ctx.require(Scope.CUSTOM_FIELDS_WRITE)
        current = await self.get(ctx, field_id)
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        merged = msgspec.structs.asdict(current) | changes
        problems = validation.FieldProblems()
        label = problems.check(
            validation.text, merged["label"], "label", max_length=100, required=True
        )
        options = _checked_options(problems, current.type, merged["options"])
        problems.raise_any()
        row = await self.db.fetchrow(
            """
            UPDATE custom_fields SET label = $3, options = $4::jsonb, required = $5, position = $6
            WHERE tenant_id = $1 AND id = $2 RETURNING *
            """,
            ctx.tenant_id,
            field_id,
            label,
            json.dumps(options),
            merged["required"],
            merged["position"],
        )
        if row is None:
            raise NotFoundError(f"custom field {field_id} not found in this workspace")
        field = field_out(row)
        await self._audit(ctx, "update", current, field)
        return field

    async def delete(self, ctx: TenantContext, field_id: UUID) -> None:
        """Remove a definition; records keep their values as free-form data."""
        ctx.require(Scope.CUSTOM_FIELDS_WRITE)
        deleted = await self.db.fetchrow(
            "DELETE FROM custom_fields WHERE tenant_id = $1 AND id = $2 RETURNING *",
            ctx.tenant_id,
            field_id,
        )
        if deleted is None:
            raise NotFoundError(f"custom field {field_id} not found in this workspace")
        await self._audit(ctx, "delete", field_out(deleted), None)

    async def _audit(
        self,
        ctx: TenantContext,
        action: Action,
        before: CustomFieldOut | None,
        after: CustomFieldOut | None,
    ) -> None:
        field = after or before
        assert field is not None  # noqa: S101 - one of the two always exists
        await record(
            self.db,
            ctx,
            action,
            "custom_field",
            field.id,
            label=f"{field.object_type}.{field.key}",
            before=msgspec.to_builtins(before) if before else None,
            after=msgspec.to_builtins(after) if after else None,
        )

    async def checked_values(
        self,
        ctx: TenantContext,
        object_type: str,
        problems: validation.FieldProblems,
        custom: dict[str, Any],
    ) -> dict[str, Any]:
        """``custom`` with defined keys normalised by type; problems noted as ``custom.<key>``.

        A defined key given ``null`` or an empty value is dropped; a required field
        must be present. Undefined keys pass unchanged (free-form, as before).
        """
        definitions = await self.definitions(ctx, [object_type])
        out = dict(custom)
        for definition in definitions:
            name = f"{FILTER_PREFIX}{definition.key}"
            value = normalised(definition, out.pop(definition.key, None), name, problems)
            if value is not None:
                out[definition.key] = value
            elif definition.required:
                problems.add(name, f"{definition.label!r} is required")
        return out

    async def filter_document(
        self, ctx: TenantContext, object_type: str, raw: Mapping[str, list[str]]
    ) -> dict[str, Any] | None:
        """A jsonb document for ``custom @> …`` from ``custom.<key>`` query values.

        Equality for every type; for ``multi_select`` the record must contain each
        value given. A 400 names an unknown key or a value its type refuses.
        """
        if not raw:
            return None
        by_key = {d.key: d for d in await self.definitions(ctx, [object_type])}
        problems = validation.FieldProblems()
        document: dict[str, Any] = {}
        for name, values in raw.items():
            key = name.removeprefix(FILTER_PREFIX)
            definition = by_key.get(key)
            if definition is None:
                problems.add(name, f"no custom field {key!r} for {object_type}s in this workspace")
                continue
            if definition.type == "multi_select":
                document[key] = normalised(definition, values, name, problems)
            elif len(set(values)) > 1:
                problems.add(name, "give one value to filter by")
            else:
                value = normalised(definition, values[0], name, problems)
                if value is None and name not in problems.fields:
                    problems.add(name, "give a value to filter by")
                document[key] = value
        problems.raise_any()
        return document


def custom_filters(query: Iterable[tuple[str, Any]]) -> dict[str, list[str]]:
    """The ``custom.<key>`` parameters of a query string's (name, value) pairs."""
    found: dict[str, list[str]] = {}
    for name, value in query:
        if name.startswith(FILTER_PREFIX):
            found.setdefault(name, []).append(str(value))
    return found


def _object_type(value: str) -> str:
    if value not in OBJECT_TYPES:
        reason = f"must be one of {', '.join(OBJECT_TYPES)}"
        raise InvalidInputError(f"object_type {reason}", fields={"object_type": reason})
    return value


def _checked_options(
    problems: validation.FieldProblems, field_type: str, options: list[str]
) -> list[str]:
    cleaned = [
        problems.check(validation.text, option, "options", max_length=100, required=True)
        for option in options
    ]
    kept = [option for option in cleaned if option]
    if field_type in CHOICE_TYPES and not options:
        problems.add("options", f"a {field_type} field needs at least one option")
    elif field_type not in CHOICE_TYPES and options:
        problems.add("options", f"only select and multi-select fields have options ({field_type})")
    if len({option.casefold() for option in kept}) != len(kept):
        problems.add("options", "options must differ")
    return kept


def normalised(
    definition: CustomFieldOut, value: Any, name: str, problems: validation.FieldProblems
) -> Any:
    """``value`` in the stored form of the field's type, ``None`` when empty or wrong."""
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        return None
    rule = _RULES[definition.type]
    try:
        return rule(value, definition)
    except InvalidInputError as exc:
        problems.add(name, exc.message)
    except (ValueError, TypeError, ArithmeticError):
        problems.add(name, f"{value!r} is not a valid {definition.type.replace('_', ' ')}")
    return None


def _refuse(reason: str) -> InvalidInputError:
    return InvalidInputError(reason)


def _text(value: Any, definition: CustomFieldOut) -> str:
    if not isinstance(value, str):
        raise _refuse("must be text")
    limit = MAX_LONG_TEXT if definition.type == "long_text" else MAX_TEXT
    allowed = _LONG_TEXT_CONTROLS if definition.type == "long_text" else frozenset()
    if any(ch not in allowed and (ch < " " or ch == "\x7f") for ch in value):
        raise _refuse("must not contain control characters")
    cleaned = value.strip()
    if len(cleaned) > limit:
        raise _refuse(f"must be at most {limit} characters (got {len(cleaned)})")
    return cleaned


def _number(value: Any, _: CustomFieldOut) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise _refuse("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise _refuse(f"{value!r} is not a whole number")
        value = int(value)
    if isinstance(value, str):
        if not _INTEGER.match(value.strip()):
            raise _refuse(f"{value!r} is not a whole number")
        value = int(value.strip())
    if abs(value) > MAX_NUMBER:
        raise _refuse(f"must be between -{MAX_NUMBER} and {MAX_NUMBER}")
    return int(value)


def _decimal(value: Any, _: CustomFieldOut) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise _refuse("must be a decimal number such as 12.50")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _refuse(f"{value!r} is not a decimal number such as 12.50") from None
    if not number.is_finite():
        raise _refuse(f"{value!r} is not a decimal number such as 12.50")
    if len(number.as_tuple().digits) > MAX_DECIMAL_DIGITS:
        raise _refuse(f"must have at most {MAX_DECIMAL_DIGITS} digits")
    # One spelling per value (12.50 and 12.5 are equal), so filters match by equality.
    text = format(number.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def _date(value: Any, _: CustomFieldOut) -> str:
    if not isinstance(value, str):
        raise _refuse("must be a date like 2027-03-31")
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise _refuse(f"{value!r} is not a date like 2027-03-31") from None
    validation.plausible_time(day, "date")
    return day.isoformat()


def _select(value: Any, definition: CustomFieldOut) -> str:
    if not isinstance(value, str) or value.strip() not in definition.options:
        raise _refuse(f"{value!r} is not one of: {', '.join(definition.options)}")
    return value.strip()


def _multi_select(value: Any, definition: CustomFieldOut) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise _refuse(f"must be a list of: {', '.join(definition.options)}")
    chosen = {_select(item, definition) for item in values}
    return [option for option in definition.options if option in chosen]


def _checkbox(value: Any, _: CustomFieldOut) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise _refuse("must be true or false")


def _url(value: Any, _: CustomFieldOut) -> str:
    if not isinstance(value, str):
        raise _refuse("must be a URL")
    candidate = value.strip()
    parts = urlsplit(candidate)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or len(candidate) > MAX_URL
        or any(ch <= " " or ch == "\x7f" for ch in candidate)
    ):
        raise _refuse(f"{value!r} is not an http:// or https:// URL")
    return candidate


def _email(value: Any, _: CustomFieldOut) -> str:
    if not isinstance(value, str):
        raise _refuse("must be an email address")
    try:
        return validation.email_address(value, "email")
    except InvalidInputError as exc:
        raise _refuse(exc.fields["email"]) from None


_RULES: dict[str, Callable[[Any, CustomFieldOut], Any]] = {
    "text": _text,
    "long_text": _text,
    "number": _number,
    "decimal": _decimal,
    "date": _date,
    "select": _select,
    "multi_select": _multi_select,
    "checkbox": _checkbox,
    "url": _url,
    "email": _email,
}
