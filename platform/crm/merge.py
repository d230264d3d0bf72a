"""Dedupe and merge: duplicate suggestions, and merging records into a survivor.

Suggestions come from SECURITY DEFINER functions (see the migration
``m20261125_2100_dedupe``): under RLS PostgreSQL would not use the expression and
trigram indexes they need. A merge runs in the caller's one transaction: it moves
what points at the merged records to the survivor, deletes them, writes the
survivor's chosen values, one ``merge`` audit entry and one ``*.merged`` event.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from orbit.platform import validation
from orbit.platform.audit.log import record
from orbit.platform.crm.companies import CompanyService, company_out
from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.crm.schemas import (
    CompanyDuplicatePage,
    CompanyDuplicates,
    CompanyMergeOut,
    ContactDuplicatePage,
    ContactDuplicates,
    ContactMergeOut,
    DuplicateOf,
    MergeIn,
)
from orbit.platform.crm.service import (
    ContactService,
    check_page_size,
    display_name,
    may_see,
    to_out,
    visible_owner_list,
)
from orbit.platform.errors import InvalidInputError, NotFoundError
from orbit.platform.events.outbox import emit
from orbit.platform.search.normalize import contact_search_document, search_document
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

MAX_MERGE = 10
"""The most records one merge takes, the survivor included."""
_EMPTY: tuple[Any, ...] = (None, "", [], {})
GROUP_BUDGET_SECONDS = 0.25
"""A page of duplicate groups looks at further windows of the workspace for this long
at most (a window is one call of ``orbit_duplicate_groups``), then returns what it found."""


@dataclass(frozen=True, slots=True)
class RecordKind:
    """What differs between merging contacts and merging companies."""

    record_type: str
    table: str
    fields: tuple[str, ...]
    reasons: tuple[str, ...]
    read: Scope
    write: Scope
    scan: dict[str, int]
    """How many keys (or records, for names) one call of the group function looks at."""


CONTACTS = RecordKind(
    record_type="contact",
    table="contacts",
    fields=("first_name", "last_name", "email", "phone", "company_id", "owner_id"),
    reasons=("email", "phone", "name"),
    read=Scope.CONTACTS_READ,
    write=Scope.CONTACTS_WRITE,
    scan={"email": 5000, "phone": 5000, "name": 1000},
)
COMPANIES = RecordKind(
    record_type="company",
    table="companies",
    fields=("name", "domain", "industry", "size", "address", "phone", "owner_id"),
    reasons=("domain", "name"),
    read=Scope.COMPANIES_READ,
    write=Scope.COMPANIES_WRITE,
    scan={"domain": 5000, "name": 5000},
)


def _encode_cursor(reason: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([reason, after]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, reasons: Sequence[str]) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        reason, after = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        reason = after = None
    if reason not in reasons or not isinstance(after, str):
        raise InvalidInputError(
            "cursor is not valid; use next_cursor from the previous page",
            fields={"cursor": "is not a cursor Orbit returned for this list"},
        )
    return reason, after


def _label(kind: RecordKind, row: Any) -> str:
    if kind is CONTACTS:
        return display_name(to_out(row))
    return str(row["name"])


class MergeService:
    """Duplicate suggestions and merges of contacts and companies in one workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # Suggestions

    async def contact_duplicates(
        self,
        ctx: TenantContext,
        *,
        reason: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> ContactDuplicatePage:
        """Groups of contacts sharing an email, a phone number or a similar name at a company."""
        groups, next_cursor = await self._groups(ctx, CONTACTS, reason, cursor, limit)
        outs = await self._contact_outs(ctx, [i for _, ids in groups for i in ids])
        items = [
            ContactDuplicates(reason=r, contacts=[outs[i] for i in ids if i in outs])  # type: ignore[arg-type]
            for r, ids in groups
        ]
        return ContactDuplicatePage(items=items, next_cursor=next_cursor)

    async def company_duplicates(
        self,
        ctx: TenantContext,
        *,
        reason: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> CompanyDuplicatePage:
        """Groups of companies sharing a domain or with a similar name."""
        groups, next_cursor = await self._groups(ctx, COMPANIES, reason, cursor, limit)
        rows = await self._rows(ctx, COMPANIES, [i for _, ids in groups for i in ids])
        items = [
            CompanyDuplicates(
                reason=r,  # type: ignore[arg-type]
                companies=[company_out(rows[i]) for i in ids if i in rows],
            )
            for r, ids in groups
        ]
        return CompanyDuplicatePage(items=items, next_cursor=next_cursor)

    async def duplicates_of(
        self, ctx: TenantContext, kind: RecordKind, record_id: UUID
    ) -> list[DuplicateOf]:
        """The likely duplicates of one record (404 when it is not visible here)."""
        await self._visible_one(ctx, kind, record_id)
        found = await self.db.fetch(
            "SELECT id, reason FROM orbit_duplicates_of($1, $2, $3::uuid[])",
            kind.table,
            record_id,
            visible_owner_list(ctx),
        )
        reasons: dict[UUID, str] = {}
        for row in found:
            reasons.setdefault(row["id"], row["reason"])
        rows = await self._rows(ctx, kind, list(reasons))
        return [
            DuplicateOf(id=i, label=_label(kind, rows[i]), reason=r)  # type: ignore[arg-type]
            for i, r in reasons.items()
            if i in rows
        ]

    async def _groups(
        self,
        ctx: TenantContext,
        kind: RecordKind,
        reason: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[tuple[str, list[UUID]]], str | None]:
        ctx.require(kind.read)
        check_page_size(limit)
        if reason is not None and reason not in kind.reasons:
            allowed = ", ".join(kind.reasons)
            raise InvalidInputError(
                f"reason must be one of {allowed}", fields={"reason": f"must be one of {allowed}"}
            )
        reasons = (reason,) if reason else kind.reasons
        current, after = _decode_cursor(cursor, reasons) if cursor else (reasons[0], "")
        index = reasons.index(current)
        owners = visible_owner_list(ctx)
        groups: list[tuple[str, list[UUID]]] = []
        next_cursor = None
        started = time.monotonic()
        while index < len(reasons):
            current = reasons[index]
            want = limit - len(groups)
            if want <= 0:
                next_cursor = _encode_cursor(current, after)
                break
            rows = await self.db.fetch(
                "SELECT key, ids FROM orbit_duplicate_groups($1, $2, $3, $4::uuid[], $5, $6)",
                kind.table,
                current,
                after,
                owners,
                want + 1,
                kind.scan[current],
            )
            found = [row for row in rows if row["ids"]]
            edge = next((row["key"] for row in rows if not row["ids"]), None)
            groups += [(current, list(row["ids"])) for row in found[:want]]
            if len(found) > want:
                next_cursor = _encode_cursor(current, found[want - 1]["key"])
                break
            if edge is not None:  # the window was full: more of the workspace to look at
                if time.monotonic() - started < GROUP_BUDGET_SECONDS:
                    after = edge
                    continue
                next_cursor = _encode_cursor(current, edge)
                break
            index, after = index + 1, ""
        return groups, next_cursor

    # Merging

    async def merge_contacts(self, ctx: TenantContext, data: MergeIn) -> ContactMergeOut:
        """Merge contacts into ``data.survivor_id``: timeline, deals, tasks and tags move."""
        ctx.require(Scope.CONTACTS_WRITE)
        records, survivor, merged = await self._prepare(ctx, CONTACTS, data)
        values = await self._chosen(ctx, CONTACTS, records, data)
        before = to_out(
            records[survivor],
            await self._company_name(ctx, records[survivor]["company_id"]),
        )
        moved = {
            "activities": await self._move("activities", "contact_id", ctx, survivor, merged),
            "tasks": await self._move("tasks", "contact_id", ctx, survivor, merged),
            "deals": await self.db.fetchval(
                """
                WITH linked AS (
                    INSERT INTO deal_contacts (tenant_id, deal_id, contact_id)
                    SELECT DISTINCT tenant_id, deal_id, $2::uuid FROM deal_contacts
                    WHERE tenant_id = $1 AND contact_id = ANY($3::uuid[])
                    ON CONFLICT DO NOTHING RETURNING 1
                )
                SELECT count(*) FROM linked
                """,
                ctx.tenant_id,
                survivor,
                merged,
            ),
        }
        await self._delete(ctx, CONTACTS, merged)
        contacts = ContactService(self.db)
        fields = await contacts._checked(ctx, values, custom_written=False)  # noqa: SLF001 - same area
        row = await self.db.fetchrow(
            """
            UPDATE contacts SET first_name = $3, last_name = $4, email = $5, phone = $6,
                company_id = $7, owner_id = $8, tags = $9, custom = $10::jsonb,
                search_text = $11, updated_at = now()
            WHERE tenant_id = $1 AND id = $2
            RETURNING *
            """,
            ctx.tenant_id,
            survivor,
            fields["first_name"],
            fields["last_name"],
            fields["email"],
            fields["phone"],
            fields["company_id"],
            fields["owner_id"],
            fields["tags"],
            json.dumps(fields["custom"]),
            contact_search_document(
                fields["first_name"], fields["last_name"], fields["email"], fields["company_name"]
            ),
        )
        contact = to_out(row, fields["company_name"])
        after = msgspec.to_builtins(contact)
        await self._record(ctx, CONTACTS, records, data, msgspec.to_builtins(before), after, moved)
        await emit(
            self.db,
            ctx.tenant_id,
            "contact.merged",
            {
                "survivor_id": str(survivor),
                "merged_ids": [str(i) for i in merged],
                "contact": after,
            },
        )
        return ContactMergeOut(contact=contact, merged_ids=merged)

    async def merge_companies(self, ctx: TenantContext, data: MergeIn) -> CompanyMergeOut:
        """Merge companies into ``data.survivor_id``: contacts, deals, timeline, tasks move."""
        ctx.require(Scope.COMPANIES_WRITE)
        records, survivor, merged = await self._prepare(ctx, COMPANIES, data)
        values = await self._chosen(ctx, COMPANIES, records, data)
        before = company_out(records[survivor])
        people = await self.db.fetch(
            "UPDATE contacts SET company_id = $2 "
            "WHERE tenant_id = $1 AND company_id = ANY($3::uuid[]) RETURNING id",
            ctx.tenant_id,
            survivor,
            merged,
        )
        moved = {"contacts": len(people)} | {
            table: await self._move(table, "company_id", ctx, survivor, merged)
            for table in ("deals", "activities", "tasks")
        }
        # The domain is unique per workspace: the merged records go before the survivor
        # may take one of their domains.
        await self._delete(ctx, COMPANIES, merged)
        companies = CompanyService(self.db)
        fields = await companies._checked(ctx, values, custom_written=False)  # noqa: SLF001 - same area
        row = await companies._write(  # noqa: SLF001 - same area
            """
            UPDATE companies SET name = $3, domain = $4, industry = $5, size = $6, address = $7,
                phone = $8, owner_id = $9, tags = $10, custom = $11::jsonb, search_text = $12,
                updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING *
            """,
            ctx.tenant_id,
            survivor,
            *(fields[f] for f in COMPANIES.fields),
            fields["tags"],
            json.dumps(fields["custom"]),
            search_document(fields["name"], fields["domain"]),
        )
        company = company_out(row)
        # Contacts' search text holds their company's name: the moved ones', and all of
        # the survivor's when its name changed.
        await self._refresh_contact_search(
            ctx,
            survivor,
            company.name,
            None if company.name != before.name else [row["id"] for row in people],
        )
        after = msgspec.to_builtins(company)
        await self._record(ctx, COMPANIES, records, data, msgspec.to_builtins(before), after, moved)
        await emit(
            self.db,
            ctx.tenant_id,
            "company.merged",
            {
                "survivor_id": str(survivor),
                "merged_ids": [str(i) for i in merged],
                "company": after,
            },
        )
        return CompanyMergeOut(company=company, merged_ids=merged)

    async def _prepare(
        self, ctx: TenantContext, kind: RecordKind, data: MergeIn
    ) -> tuple[dict[UUID, Any], UUID, list[UUID]]:
        """The records (locked), survivor and merged ids; a 400 or 404 before any write."""
        merged = list(data.merged_ids)
        problems = validation.FieldProblems()
        if not merged:
            problems.add("merged_ids", "name at least one record to merge into the survivor")
        elif data.survivor_id in merged or len(set(merged)) != len(merged):
            problems.add("merged_ids", "a record cannot be merged with itself")
        elif len(merged) + 1 > MAX_MERGE:
            problems.add("merged_ids", f"at most {MAX_MERGE} records can be merged at once")
        problems.raise_any()
        ids = [data.survivor_id, *merged]
        rows = await self.db.fetch(
            f"SELECT * FROM {kind.table} WHERE tenant_id = $1 AND id = ANY($2::uuid[]) "
            "ORDER BY id FOR UPDATE",
            ctx.tenant_id,
            ids,
        )
        records = {row["id"]: row for row in rows if may_see(ctx, row["owner_id"])}
        for record_id in ids:
            if record_id not in records:
                raise NotFoundError(
                    f"{kind.record_type} {record_id} not found in this workspace",
                    fields={
                        "survivor_id" if record_id == data.survivor_id else "merged_ids": (
                            f"no {kind.record_type} {record_id} in this workspace"
                        )
                    },
                )
        return records, data.survivor_id, merged

    async def _chosen(
        self, ctx: TenantContext, kind: RecordKind, records: dict[UUID, Any], data: MergeIn
    ) -> dict[str, Any]:
        """The survivor's values after the merge: chosen, else the survivor's, else filled."""
        order = [records[data.survivor_id], *(records[i] for i in data.merged_ids)]
        customs = [_custom(row) for row in order]
        definitions = await CustomFieldService(self.db).definitions(ctx, [kind.record_type])
        keys = [d.key for d in definitions] + [k for c in customs for k in c]
        custom_keys = list(dict.fromkeys(keys))
        problems = validation.FieldProblems()
        allowed = set(kind.fields) | {f"custom.{key}" for key in custom_keys}
        for field, source in data.choices.items():
            if field not in allowed:
                problems.add(f"choices.{field}", f"{field!r} is not a field a merge can choose")
            elif source not in records:
                problems.add(f"choices.{field}", f"{source} is not one of the records being merged")
        problems.raise_any()

        def pick(values: list[Any], field: str) -> Any:
            if field in data.choices:
                return values[[row["id"] for row in order].index(data.choices[field])]
            return next((v for v in values if v not in _EMPTY), values[0])

        out: dict[str, Any] = {f: pick([row[f] for row in order], f) for f in kind.fields}
        out["custom"] = {}
        for key in custom_keys:
            value = pick([c.get(key) for c in customs], f"custom.{key}")
            if value is not None:
                out["custom"][key] = value
        out["tags"] = sorted({tag for row in order for tag in row["tags"] or []})
        return out

    async def _move(
        self, table: str, column: str, ctx: TenantContext, survivor: UUID, merged: list[UUID]
    ) -> int:
        """Point ``table.column`` at the survivor where it named a merged record."""
        status = await self.db.execute(
            f"UPDATE {table} SET {column} = $2 WHERE tenant_id = $1 AND {column} = ANY($3::uuid[])",
            ctx.tenant_id,
            survivor,
            merged,
        )
        return int(str(status).rsplit(" ", 1)[-1]) if status else 0

    async def _delete(self, ctx: TenantContext, kind: RecordKind, merged: list[UUID]) -> None:
        await self.db.execute(
            f"DELETE FROM {kind.table} WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            merged,
        )

    async def _record(
        self,
        ctx: TenantContext,
        kind: RecordKind,
        records: dict[UUID, Any],
        data: MergeIn,
        before: dict[str, Any],
        after: dict[str, Any],
        moved: dict[str, int],
    ) -> None:
        """One ``merge`` entry on the survivor: merged ids and labels, choices, what moved."""
        await record(
            self.db,
            ctx,
            "merge",
            kind.record_type,
            data.survivor_id,
            label=_label(kind, records[data.survivor_id]),
            owner_id=after.get("owner_id"),
            before=before,
            after=after,
            details={
                "merged_ids": [str(i) for i in data.merged_ids],
                "merged": [
                    {"id": str(i), "label": _label(kind, records[i])} for i in data.merged_ids
                ],
                "choices": {
                    field: {"from": str(source), "value": _chosen_value(after, field)}
                    for field, source in data.choices.items()
                },
                "moved": moved,
            },
        )

    async def _refresh_contact_search(
        self,
        ctx: TenantContext,
        company_id: UUID,
        company_name: str,
        contact_ids: list[UUID] | None,
    ) -> None:
        """Rewrite the search text of the company's contacts (``None``: all of them)."""
        if contact_ids == []:
            return
        rows = await self.db.fetch(
            "SELECT id, first_name, last_name, email FROM contacts "
            "WHERE tenant_id = $1 AND company_id = $2 "
            "AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[]))",
            ctx.tenant_id,
            company_id,
            contact_ids,
        )
        if not rows:
            return
        await self.db.execute(
            """
            UPDATE contacts c SET search_text = x.search_text
            FROM unnest($2::uuid[], $3::text[]) AS x (id, search_text)
            WHERE c.tenant_id = $1 AND c.id = x.id
            """,
            ctx.tenant_id,
            [row["id"] for row in rows],
            [
                contact_search_document(
                    row["first_name"], row["last_name"], row["email"], company_name
                )
                for row in rows
            ],
        )

    async def _visible_one(self, ctx: TenantContext, kind: RecordKind, record_id: UUID) -> None:
        ctx.require(kind.read)
        owner = await self.db.fetchrow(
            f"SELECT owner_id FROM {kind.table} WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            record_id,
        )
        if owner is None or not may_see(ctx, owner["owner_id"]):
            raise NotFoundError(f"{kind.record_type} {record_id} not found in this workspace")

    async def _rows(self, ctx: TenantContext, kind: RecordKind, ids: list[UUID]) -> dict[UUID, Any]:
        if not ids:
            return {}
        rows = await self.db.fetch(
            f"SELECT * FROM {kind.table} WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            ids,
        )
        return {row["id"]: row for row in rows if may_see(ctx, row["owner_id"])}

    async def _contact_outs(self, ctx: TenantContext, ids: list[UUID]) -> dict[UUID, Any]:
        rows = await self._rows(ctx, CONTACTS, ids)
        names = await self._company_names(ctx, rows.values())
        return {i: to_out(row, names.get(row["company_id"])) for i, row in rows.items()}

    async def _company_names(self, ctx: TenantContext, rows: Any) -> dict[UUID, str]:
        ids = list({row["company_id"] for row in rows if row["company_id"] is not None})
        if not ids:
            return {}
        found = await self.db.fetch(
            "SELECT id, name FROM companies WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            ids,
        )
        return {row["id"]: row["name"] for row in found}

    async def _company_name(self, ctx: TenantContext, company_id: UUID | None) -> str | None:
        if company_id is None:
            return None
        return await self.db.fetchval(  # type: ignore[no-any-return]
            "SELECT name FROM companies WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            company_id,
        )


def _custom(row: Any) -> dict[str, Any]:
    custom = row["custom"]
    return json.loads(custom) if isinstance(custom, str) else dict(custom or {})


def _chosen_value(after: dict[str, Any], field: str) -> Any:
    if field.startswith("custom."):
        return after.get("custom", {}).get(field.removeprefix("custom."))
    return after.get(field)
