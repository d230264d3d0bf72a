"""Contacts: the business rules, independent of HTTP."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from orbit.platform import validation
from orbit.platform.audit.log import record
from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.crm.listing import (
    DEFAULT_SORT,
    STANDARD_FIELDS,
    FieldSpec,
    Sort,
    encode_sort_cursor,
    filter_conditions,
    keyset_condition,
    order_by,
    sort_key_sql,
)
from orbit.platform.crm.models import Contact
from orbit.platform.crm.schemas import (
    ContactCreate,
    ContactOut,
    ContactPage,
    ContactPatch,
    ListCount,
)
from orbit.platform.errors import InvalidInputError, NotFoundError
from orbit.platform.events.outbox import emit
from orbit.platform.ids import new_id
from orbit.platform.search.matching import Matches, matching_ids
from orbit.platform.search.normalize import contact_search_document
from orbit.tenants.quotas import Quotas
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orbit.platform.crm.views import ListSpec
    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_CUSTOM_BYTES = 16_384
MAX_QUERY = 200
_CURSOR_YEARS = (validation.EARLIEST_YEAR, validation.LATEST_YEAR)
"""Dates Orbit accepts for timeline and task times; cursors stay within them too."""
_TEXT_FIELDS = {"first_name": 100, "last_name": 100, "phone": 50}
"""Free-text contact fields and their length limits."""


def encode_cursor(updated_at: datetime, contact_id: UUID) -> str:
    """An opaque cursor for the row after which the next page starts."""
    raw = json.dumps([updated_at.isoformat(), str(contact_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_after(
    items: Sequence[Any], fetched: int, limit: int, stamp: str = "updated_at"
) -> str | None:
    """The next page's cursor when the query (which asks for ``limit + 1``) found more."""
    if fetched <= limit:
        return None
    return encode_cursor(getattr(items[-1], stamp), items[-1].id)


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Read a cursor back; a 400 naming ``cursor`` when it was not made by Orbit."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, contact_id = json.loads(raw)
        updated_at = datetime.fromisoformat(stamp).astimezone(UTC)
        after = updated_at, UUID(contact_id)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        after = None
    if after is None or not _CURSOR_YEARS[0] <= after[0].year <= _CURSOR_YEARS[1]:
        raise InvalidInputError(
            "cursor is not valid; use next_cursor from the previous page",
            fields={"cursor": "is not a cursor Orbit returned"},
        )
    return after


class Listing:
    """One list request taking shape: its table, conditions, ``q`` and saved-view spec.

    ``table`` names the record table as ``r`` (with any joins ``columns`` need).
    Conditions are SQL with ``{}`` for each argument (numbered on use).
    """

    def __init__(
        self,
        ctx: TenantContext,
        record_type: str,
        spec: ListSpec | None,
        table: str,
        columns: str = "r.*",
    ) -> None:
        self.ctx = ctx
        self.record_type = record_type
        self.table = table
        self.columns = columns
        self.spec = spec
        self.q = ""
        self.conditions = ["r.tenant_id = $1"]
        self.args: list[Any] = [ctx.tenant_id]

    async def narrowed(
        self, db: Database, object_type: str, q: str | None, custom: dict[str, list[str]] | None
    ) -> Listing:
        """This listing with ``q`` (else the saved view's) and the custom-field filters."""
        document = await CustomFieldService(db).filter_document(self.ctx, object_type, custom or {})
        self.q = checked_query(q) or (self.spec.q if self.spec else "")
        if document is not None:
            self.where("r.custom @> {}::jsonb", json.dumps(document))
        return self

    def where(self, condition: str, *values: Any) -> None:
        """Add ``condition``; each ``{}`` becomes the next argument's placeholder."""
        marks = []
        for value in values:
            self.args.append(value)
            marks.append(f"${len(self.args)}")
        self.conditions.append(condition.format(*marks))

    @property
    def sort(self) -> Sort:
        """The spec's sort, or the natural one (most recently updated first)."""
        return self.spec.sort if self.spec else Sort("updated_at", descending=True)

    @property
    def fields(self) -> dict[str, FieldSpec]:
        """The fields filters and the sort refer to."""
        if self.spec is not None:
            return self.spec.fields
        return {f.name: f for f in STANDARD_FIELDS[_OBJECT_TYPES[self.record_type]]}

    async def filter(self, db: Database, after: tuple[datetime, UUID] | None) -> Matches | None:
        """Add ``q``, the spec's filters and record visibility; the ``q`` matches."""
        matches = None
        if self.q:
            natural = str(self.sort) == DEFAULT_SORT
            owners = visible_owner_list(self.ctx)
            matches = await matching_ids(
                db, owners, self.record_type, self.q, after if natural else None
            )
            self.where("r.id = ANY({}::uuid[])", matches.ids)
        if self.spec is not None:
            self.conditions += filter_conditions(self.spec.filters, self.fields, self.args)
        if visible := owner_condition(self.ctx, "r.owner_id", self.args):
            self.conditions.append(visible)
        return matches


_OBJECT_TYPES = {"contacts": "contact", "companies": "company", "deals": "deal"}
ESTIMATE_EXACT_BELOW = 1000
"""Lists estimated to hold fewer rows than this are counted exactly (it is cheap)."""


async def list_page(
    db: Database, listing: Listing, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One keyset page of ``listing`` in its sort, and the next page's cursor.

    In the natural order the cursor is (updated_at, id) as it always was; in any
    other sort it carries the sort and its key too (``listing.keyset_condition``).
    """
    check_page_size(limit)
    sort, fields = listing.sort, listing.fields
    natural = str(sort) == DEFAULT_SORT
    after = decode_cursor(cursor) if cursor and natural else None
    matches = await listing.filter(db, after)
    if after:
        listing.where("(r.updated_at, r.id) < ({}, {})", *after)
    elif cursor:
        listing.conditions.append(keyset_condition(sort, fields, cursor, listing.args))
    listing.args.append(limit + 1)
    rows = await db.fetch(
        f"SELECT {listing.columns}, {sort_key_sql(sort, fields)} FROM {listing.table} "
        f"WHERE {' AND '.join(listing.conditions)} {order_by(sort, fields)} "
        f"LIMIT ${len(listing.args)}",
        *listing.args,
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = (
            encode_cursor(last["updated_at"], last["id"])
            if natural
            else encode_sort_cursor(sort, last["sort_key"], last["id"])
        )
    elif natural and matches is not None and matches.resume is not None:
        next_cursor = encode_cursor(*matches.resume)
    return list(rows[:limit]), next_cursor


async def list_count(db: Database, listing: Listing, *, exact: bool = False) -> ListCount:
    """How many rows ``listing`` has: the planner's estimate, exact on demand or when small.

    A list filtered by ``q`` is at most one chunk of matches, so it is always exact
    (shown as "1000+" by the pages when the chunk was full).
    """
    matches = await listing.filter(db, None)
    where = " AND ".join(listing.conditions)
    table = listing.table
    if not exact and matches is None:
        plan = await db.fetchval(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE {where}", *listing.args
        )
        estimate = int(json.loads(plan)[0]["Plan"]["Plan Rows"])
        if estimate >= ESTIMATE_EXACT_BELOW:
            return ListCount(count=estimate, exact=False)
    count = await db.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", *listing.args)
    return ListCount(count=int(count), exact=True)


def checked_query(q: str | None) -> str:
    """A list's or the search box's ``q`` trimmed; a 400 naming ``q`` when unusable."""
    query = validation.no_control_characters(q or "", "q").strip()
    if len(query) > MAX_QUERY:
        raise InvalidInputError(
            f"q must be at most {MAX_QUERY} characters",
            fields={"q": f"must be at most {MAX_QUERY} characters"},
        )
    return query


def may_see(ctx: TenantContext, owner_id: UUID | None) -> bool:
    """Whether the record visibility lets ``ctx`` see a record owned by ``owner_id``."""
    return ctx.visible_owners is None or owner_id in ctx.visible_owners


def visible_owner_list(ctx: TenantContext) -> list[UUID] | None:
    """The owners ``ctx`` may see as a SQL array argument (``None``: everyone)."""
    return None if ctx.visible_owners is None else sorted(ctx.visible_owners)


def owner_condition(ctx: TenantContext, column: str, args: list[Any]) -> str | None:
    """A SQL condition keeping ``column`` to visible owners (appends its argument)."""
    owners = visible_owner_list(ctx)
    if owners is None:
        return None
    args.append(owners)
    return f"{column} = ANY(${len(args)}::uuid[])"


def check_page_size(limit: int) -> None:
    """A 400 naming ``limit`` unless 1 ≤ limit ≤ MAX_PAGE."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(
            f"limit must be between 1 and {MAX_PAGE}",
            fields={"limit": f"must be between 1 and {MAX_PAGE}"},
        )


def to_out(row: dict[str, Any] | Any, company_name: str | None = None) -> ContactOut:
    """A database row (and its company's name) as the API's contact."""
    custom = row["custom"]
    return ContactOut(
        id=row["id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        phone=row["phone"],
        company_id=row["company_id"],
        company_name=company_name,
        owner_id=row["owner_id"],
        tags=list(row["tags"] or []),
        custom=json.loads(custom) if isinstance(custom, str) else dict(custom or {}),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def display_name(contact: ContactOut) -> str:
    """How a contact is named in lists: full name, else email."""
    return f"{contact.first_name} {contact.last_name}".strip() or contact.email or "—"


class ContactService:
    """Contacts of one workspace; every call takes the caller's tenant context."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def find(
        self,
        ctx: TenantContext,
        *,
        q: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
        custom: dict[str, list[str]] | None = None,
        spec: ListSpec | None = None,
    ) -> ContactPage:
        """Contacts, most recently updated first (or in ``spec``'s sort), matching ``q``.

        ``q`` matches names, email and company case- and accent-insensitively, as a
        substring or (four characters or more) with a typo. ``custom`` maps
        ``custom.<key>`` to the values to filter by (see
        ``CustomFieldService.filter_document``); ``spec`` (a saved view, filters, sort)
        comes from ``SavedViewService.list_spec``.
        """
        ctx.require(Scope.CONTACTS_READ)
        listing = await self._listing(ctx, q, custom, spec)
        rows, next_cursor = await list_page(self.db, listing, cursor, limit)
        names = await self._company_names(ctx, rows)
        items = [to_out(row, names.get(row["company_id"])) for row in rows]
        return ContactPage(items=items, next_cursor=next_cursor)

    async def count(
        self,
        ctx: TenantContext,
        *,
        q: str | None = None,
        custom: dict[str, list[str]] | None = None,
        spec: ListSpec | None = None,
        exact: bool = False,
    ) -> ListCount:
        """How many contacts ``find`` would list: estimated unless ``exact`` (or few)."""
        ctx.require(Scope.CONTACTS_READ)
        return await list_count(self.db, await self._listing(ctx, q, custom, spec), exact=exact)

    async def _listing(
        self,
        ctx: TenantContext,
        q: str | None,
        custom: dict[str, list[str]] | None,
        spec: ListSpec | None,
    ) -> Listing:
        listing = Listing(ctx, "contacts", spec, "contacts r")
        return await listing.narrowed(self.db, "contact", q, custom)

    async def get(self, ctx: TenantContext, contact_id: UUID) -> ContactOut:
        """One contact; 404 when it is not in this workspace."""
        ctx.require(Scope.CONTACTS_READ)
        row = await (
            Contact.select()
            .where((Contact.tenant_id == ctx.tenant_id) & (Contact.id == contact_id))
            .first()
        )
        if row is None or not may_see(ctx, row["owner_id"]):
            raise NotFoundError(f"contact {contact_id} not found in this workspace")
        names = await self._company_names(ctx, [row])
        return to_out(row, names.get(row["company_id"]))

    async def create(self, ctx: TenantContext, data: ContactCreate) -> ContactOut:
        """Create a contact after checking every field."""
        ctx.require(Scope.CONTACTS_WRITE)
        # Before anything is written (a company named here would be created by the check).
        await Quotas(self.db).check_contacts(ctx.tenant_id)
        fields = await self._checked(ctx, msgspec.structs.asdict(data), custom_written=True)
        now = datetime.now(UTC)
        contact_id = new_id()
        row = await self.db.fetchrow(
            """
            INSERT INTO contacts (tenant_id, id, first_name, last_name, email, phone,
                                  company_id, owner_id, tags, custom, search_text,
                                  created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $12)
            RETURNING *
            """,
            ctx.tenant_id,
            contact_id,
            *_column_values(fields),
            now,
        )
        contact = to_out(row, fields["company_name"])
        await emit(self.db, ctx.tenant_id, "contact.created", msgspec.to_builtins(contact))
        await record(
            self.db,
            ctx,
            "create",
            "contact",
            contact.id,
            label=display_name(contact),
            owner_id=contact.owner_id,
            after=msgspec.to_builtins(contact),
        )
        return contact

    async def update(self, ctx: TenantContext, contact_id: UUID, patch: ContactPatch) -> ContactOut:
        """Change the fields present in ``patch``."""
        ctx.require(Scope.CONTACTS_WRITE)
        current = await self.get(ctx, contact_id)
        merged = msgspec.structs.asdict(current)
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        if "company_name" in changes and "company_id" not in changes:
            merged["company_id"] = None  # a new name (or null) replaces the linked company
        merged.update(changes)
        fields = await self._checked(ctx, merged, custom_written="custom" in changes)
        row = await self.db.fetchrow(
            """
            UPDATE contacts SET first_name = $3, last_name = $4, email = $5, phone = $6,
                company_id = $7, owner_id = $8, tags = $9, custom = $10::jsonb,
                search_text = $11, updated_at = now()
            WHERE tenant_id = $1 AND id = $2
            RETURNING *
            """,
            ctx.tenant_id,
            contact_id,
            *_column_values(fields),
        )
        if row is None:  # deleted between the read and the write
            raise NotFoundError(f"contact {contact_id} not found in this workspace")
        contact = to_out(row, fields["company_name"])
        await emit(self.db, ctx.tenant_id, "contact.updated", msgspec.to_builtins(contact))
        await record(
            self.db,
            ctx,
            "update",
            "contact",
            contact.id,
            label=display_name(contact),
            owner_id=contact.owner_id,
            before=msgspec.to_builtins(current),
            after=msgspec.to_builtins(contact),
        )
        return contact

    async def delete(self, ctx: TenantContext, contact_id: UUID) -> None:
        """Delete a contact; 404 when it is not in this workspace."""
        ctx.require(Scope.CONTACTS_WRITE)
        deleted = await self.db.fetchrow(
            "DELETE FROM contacts WHERE tenant_id = $1 AND id = $2 RETURNING *",
            ctx.tenant_id,
            contact_id,
        )
        if deleted is None:
            raise NotFoundError(f"contact {contact_id} not found in this workspace")
        await emit(self.db, ctx.tenant_id, "contact.deleted", {"id": str(contact_id)})
        gone = to_out(deleted)
        await record(
            self.db,
            ctx,
            "delete",
            "contact",
            contact_id,
            label=display_name(gone),
            owner_id=gone.owner_id,
            before=msgspec.to_builtins(gone),
        )

    async def _company_names(self, ctx: TenantContext, rows: Sequence[Any]) -> dict[UUID, str]:
        ids = list({row["company_id"] for row in rows if row["company_id"] is not None})
        if not ids:
            return {}
        found = await self.db.fetch(
            "SELECT id, name FROM companies WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            ids,
        )
        return {row["id"]: row["name"] for row in found}

    async def _company(
        self, ctx: TenantContext, data: dict[str, Any], problems: validation.FieldProblems
    ) -> tuple[UUID | None, str | None]:
        """The contact's company: by id (must exist here) or by name (found or created)."""
        company_id = data.get("company_id")
        if company_id is not None:
            name = await self.db.fetchval(
                "SELECT name FROM companies WHERE tenant_id = $1 AND id = $2",
                ctx.tenant_id,
                company_id,
            )
            if name is None:
                problems.add("company_id", f"no company {company_id} in this workspace")
            return company_id, name
        company_name = problems.check(
            validation.text, data.get("company_name"), "company_name", max_length=200
        )
        if not company_name:
            return None, None
        from orbit.platform.crm.companies import CompanyService  # noqa: PLC0415 - mutual use

        company = await CompanyService(self.db).find_or_create(ctx, company_name)
        return company.id, company.name

    async def _checked(
        self, ctx: TenantContext, data: dict[str, Any], *, custom_written: bool
    ) -> dict[str, Any]:
        """Trim and check every field; raise one 400 naming all bad fields.

        Custom values are checked against the workspace's contact fields when
        ``custom`` is written; keys no field defines are kept as free-form data.
        """
        problems = validation.FieldProblems()
        out: dict[str, Any] = {}
        for name, limit in _TEXT_FIELDS.items():
            value = problems.check(validation.text, data.get(name), name, max_length=limit)
            out[name] = value or ("" if name != "phone" else None)
        email = data.get("email") or ""
        out["email"] = problems.check(validation.email_address, email) if email.strip() else None
        if not (out["first_name"] or out["last_name"] or out["email"] or problems.fields):
            problems.add("first_name", "a contact needs a first name, a last name or an email")
        out["tags"] = checked_tags(problems, data["tags"])
        out["custom"] = checked_custom(problems, data.get("custom"))
        if custom_written:
            out["custom"] = await CustomFieldService(self.db).checked_values(
                ctx, "contact", problems, out["custom"]
            )
        out["company_id"], out["company_name"] = await self._company(ctx, data, problems)
        out["owner_id"] = await checked_member(self.db, ctx, problems, data.get("owner_id"))
        problems.raise_any()
        return out


def checked_tags(problems: validation.FieldProblems, tags: list[str] | None) -> list[str]:
    """Tags trimmed, de-duplicated and sorted; bad ones noted under ``tags``."""
    checked = [problems.check(validation.text, tag, "tags", max_length=50) for tag in tags or []]
    return sorted({tag for tag in checked if tag})


def checked_custom(problems: validation.FieldProblems, custom: Any) -> dict[str, Any]:
    """Custom values as given, unless they hold NUL or exceed the size limit."""
    value: dict[str, Any] = (
        problems.check(validation.json_without_nul, custom or {}, "custom") or {}
    )
    if len(json.dumps(value)) > MAX_CUSTOM_BYTES:
        problems.add("custom", f"must be at most {MAX_CUSTOM_BYTES} bytes of JSON")
    return value


RECORD_LINKS = (
    ("contact_id", "contacts", "contact"),
    ("company_id", "companies", "company"),
    ("deal_id", "deals", "deal"),
)
"""The records an activity or a task can be about: field, table, what a person calls it."""


async def checked_links(
    db: Database,
    ctx: TenantContext,
    problems: validation.FieldProblems,
    values: dict[str, Any],
    links: tuple[tuple[str, str, str], ...] = RECORD_LINKS,
) -> dict[str, UUID | None]:
    """The linked ids in ``values``; each one not in this workspace is noted by field."""
    checked: dict[str, UUID | None] = {}
    for field, table, what in links:
        checked[field] = values.get(field)
        if checked[field] is not None and not await db.fetchval(
            f"SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            checked[field],
        ):
            problems.add(field, f"no {what} {checked[field]} in this workspace")
    return checked


async def checked_member(
    db: Database,
    ctx: TenantContext,
    problems: validation.FieldProblems,
    membership_id: UUID | None,
    field: str = "owner_id",
) -> UUID | None:
    """``membership_id`` when it is a member of this workspace; otherwise noted."""
    if membership_id is not None and not await db.fetchval(
        "SELECT 1 FROM memberships WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        membership_id,
    ):
        problems.add(field, f"no member {membership_id} in this workspace")
    return membership_id


def _column_values(fields: dict[str, Any]) -> tuple[Any, ...]:
    """Checked fields in the column order both INSERT and UPDATE use ($3 … $11)."""
    return (
        fields["first_name"],
        fields["last_name"],
        fields["email"],
        fields["phone"],
        fields["company_id"],
        fields["owner_id"],
        fields["tags"],
        json.dumps(fields["custom"]),
        _search_text(fields),
    )


def _search_text(fields: dict[str, Any]) -> str:
    return contact_search_document(
        fields["first_name"], fields["last_name"], fields["email"], fields["company_name"]
    )
