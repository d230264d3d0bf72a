"""Companies: the organisations contacts work for and deals are sold to."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from orbit.platform import validation
from orbit.platform.audit.log import record
from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.crm.schemas import (
    CompanyCreate,
    CompanyOut,
    CompanyPage,
    CompanyPatch,
    ListCount,
)
from orbit.platform.crm.service import (
    DEFAULT_PAGE,
    Listing,
    checked_custom,
    checked_member,
    checked_tags,
    list_count,
    list_page,
    may_see,
)
from orbit.platform.errors import ConflictError, InvalidInputError, NotFoundError
from orbit.platform.events.outbox import emit
from orbit.platform.ids import new_id
from orbit.platform.search.normalize import search_document
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.crm.views import ListSpec
    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
_COLUMNS = ("name", "domain", "industry", "size", "address", "phone", "owner_id", "tags")


def normalize_domain(value: str) -> str:
    """``https://www.Example.com/about`` → ``example.com``; a 400 naming ``domain`` if invalid."""
    domain = validation.no_control_characters(value, "domain").strip().lower()
    domain = re.sub(r"^[a-z][a-z0-9+.-]*://", "", domain).split("/")[0].split(":")[0]
    domain = domain.removeprefix("www.")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    if not _HOSTNAME.match(domain):
        reason = f"{value!r} is not a domain name like example.com"
        raise InvalidInputError(f"domain: {reason}", fields={"domain": reason})
    return domain


def company_out(row: Any) -> CompanyOut:
    """A database row as the API's company."""
    custom = row["custom"]
    return CompanyOut(
        id=row["id"],
        name=row["name"],
        domain=row["domain"],
        industry=row["industry"],
        size=row["size"],
        address=row["address"],
        phone=row["phone"],
        owner_id=row["owner_id"],
        tags=list(row["tags"] or []),
        custom=json.loads(custom) if isinstance(custom, str) else dict(custom or {}),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class CompanyService:
    """Companies of one workspace."""

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
    ) -> CompanyPage:
        """Companies, most recently updated first (or in ``spec``'s sort), matching ``q``.

        ``q`` matches name and domain; ``custom`` maps ``custom.<key>`` to values the
        company's custom field must equal (for a multi-select: contain); ``spec`` (a
        saved view, filters, sort) comes from ``SavedViewService.list_spec``.
        """
        ctx.require(Scope.COMPANIES_READ)
        rows, next_cursor = await list_page(
            self.db, await self._listing(ctx, q, custom, spec), cursor, limit
        )
        return CompanyPage(items=[company_out(row) for row in rows], next_cursor=next_cursor)

    async def count(
        self,
        ctx: TenantContext,
        *,
        q: str | None = None,
        custom: dict[str, list[str]] | None = None,
        spec: ListSpec | None = None,
        exact: bool = False,
    ) -> ListCount:
        """How many companies ``find`` would list: estimated unless ``exact`` (or few)."""
        ctx.require(Scope.COMPANIES_READ)
        return await list_count(self.db, await self._listing(ctx, q, custom, spec), exact=exact)

    async def _listing(
        self,
        ctx: TenantContext,
        q: str | None,
        custom: dict[str, list[str]] | None,
        spec: ListSpec | None,
    ) -> Listing:
        listing = Listing(ctx, "companies", spec, "companies r")
        return await listing.narrowed(self.db, "company", q, custom)

    async def get(self, ctx: TenantContext, company_id: UUID) -> CompanyOut:
        """One company; 404 when it is not in this workspace."""
        ctx.require(Scope.COMPANIES_READ)
        row = await self.db.fetchrow(
            "SELECT * FROM companies WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, company_id
        )
        if row is None or not may_see(ctx, row["owner_id"]):
            raise NotFoundError(f"company {company_id} not found in this workspace")
        return company_out(row)

    async def create(
        self, ctx: TenantContext, data: CompanyCreate, *, custom_written: bool = True
    ) -> CompanyOut:
        """Create a company; a 409 naming ``domain`` when another company has it.

        ``custom_written=False`` (a company made from a contact's company name) skips
        the custom field check, required fields included: nobody has filled them yet.
        """
        ctx.require(Scope.COMPANIES_WRITE)
        fields = await self._checked(
            ctx, msgspec.structs.asdict(data), custom_written=custom_written
        )
        now = datetime.now(UTC)
        row = await self._write(
            """
            INSERT INTO companies (tenant_id, id, name, domain, industry, size, address, phone,
                                   owner_id, tags, custom, search_text, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $13)
            RETURNING *
            """,
            ctx.tenant_id,
            new_id(),
            *_values(fields),
            now,
        )
        company = company_out(row)
        await emit(self.db, ctx.tenant_id, "company.created", msgspec.to_builtins(company))
        await record(
            self.db,
            ctx,
            "create",
            "company",
            company.id,
            label=company.name,
            owner_id=company.owner_id,
            after=msgspec.to_builtins(company),
        )
        return company

    async def find_or_create(self, ctx: TenantContext, name: str) -> CompanyOut:
        """The company called ``name`` (case-insensitively), created when there is none."""
        row = await self.db.fetchrow(
            "SELECT * FROM companies WHERE tenant_id = $1 AND lower(name) = lower($2) "
            "ORDER BY created_at LIMIT 1",
            ctx.tenant_id,
            name,
        )
        if row is not None:
            return company_out(row)
        return await self.create(ctx, CompanyCreate(name=name), custom_written=False)

    async def update(self, ctx: TenantContext, company_id: UUID, patch: CompanyPatch) -> CompanyOut:
        """Change the fields present in ``patch``."""
        ctx.require(Scope.COMPANIES_WRITE)
        current = await self.get(ctx, company_id)
        merged = msgspec.structs.asdict(current)
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        merged.update(changes)
        fields = await self._checked(ctx, merged, custom_written="custom" in changes)
        row = await self._write(
            """
            UPDATE companies SET name = $3, domain = $4, industry = $5, size = $6, address = $7,
                phone = $8, owner_id = $9, tags = $10, custom = $11::jsonb, search_text = $12,
                updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING *
            """,
            ctx.tenant_id,
            company_id,
            *_values(fields),
        )
        if row is None:
            raise NotFoundError(f"company {company_id} not found in this workspace")
        company = company_out(row)
        await emit(self.db, ctx.tenant_id, "company.updated", msgspec.to_builtins(company))
        await record(
            self.db,
            ctx,
            "update",
            "company",
            company.id,
            label=company.name,
            owner_id=company.owner_id,
            before=msgspec.to_builtins(current),
            after=msgspec.to_builtins(company),
        )
        return company

    async def delete(self, ctx: TenantContext, company_id: UUID) -> None:
        """Delete a company; its contacts and deals stay, unlinked."""
        ctx.require(Scope.COMPANIES_WRITE)
        deleted = await self.db.fetchrow(
            "DELETE FROM companies WHERE tenant_id = $1 AND id = $2 RETURNING *",
            ctx.tenant_id,
            company_id,
        )
        if deleted is None:
            raise NotFoundError(f"company {company_id} not found in this workspace")
        await emit(self.db, ctx.tenant_id, "company.deleted", {"id": str(company_id)})
        gone = company_out(deleted)
        await record(
            self.db,
            ctx,
            "delete",
            "company",
            company_id,
            label=gone.name,
            owner_id=gone.owner_id,
            before=msgspec.to_builtins(gone),
        )

    async def _write(self, query: str, *args: Any) -> Any:
        try:
            return await self.db.fetchrow(query, *args)
        except asyncpg.UniqueViolationError:
            raise ConflictError(
                "another company in this workspace has this domain",
                fields={"domain": "is already used by another company"},
            ) from None

    async def _checked(
        self, ctx: TenantContext, data: dict[str, Any], *, custom_written: bool
    ) -> dict[str, Any]:
        """Every field checked; custom values against the company fields when written."""
        problems = validation.FieldProblems()
        out: dict[str, Any] = {
            "name": problems.check(
                validation.text, data.get("name"), "name", max_length=200, required=True
            ),
            "domain": problems.check(normalize_domain, data["domain"])
            if data.get("domain")
            else None,
            "size": data.get("size"),
            "tags": checked_tags(problems, data.get("tags")),
            "custom": checked_custom(problems, data.get("custom")),
            "owner_id": await checked_member(self.db, ctx, problems, data.get("owner_id")),
        }
        for name, limit in (("industry", 100), ("address", 1000), ("phone", 50)):
            out[name] = (
                problems.check(validation.text, data.get(name), name, max_length=limit) or None
            )
        if custom_written:
            out["custom"] = await CustomFieldService(self.db).checked_values(
                ctx, "company", problems, out["custom"]
            )
        problems.raise_any()
        return out


def _values(fields: dict[str, Any]) -> tuple[Any, ...]:
    """Checked fields in the column order of INSERT and UPDATE ($3 … $12)."""
    return (
        *(fields[column] for column in _COLUMNS),
        json.dumps(fields["custom"]),
        search_document(fields["name"], fields["domain"]),
    )
