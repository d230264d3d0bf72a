"""Saved views: named filters, sort and columns of a list, private or shared with the workspace.

A member sees their own views and the shared ones. Sharing needs write access to the
record type (viewers keep their views to themselves); a view is changed or deleted
by whoever saved it, and a shared one also by owners and admins. API keys see the
shared views and, with write access, save shared ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.crm.listing import (
    DEFAULT_SORT,
    FieldSpec,
    Filter,
    Sort,
    catalog,
    parse_columns,
    parse_filters,
    parse_sort,
)
from orbit.platform.crm.schemas import SavedViewIn, SavedViewOut, SavedViewPatch
from orbit.platform.crm.service import checked_query
from orbit.platform.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from orbit.platform.ids import new_id
from orbit.tenants.roles import Role, Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

MAX_VIEWS_PER_MEMBER = 200
READ_SCOPES = {
    "contact": Scope.CONTACTS_READ,
    "company": Scope.COMPANIES_READ,
    "deal": Scope.DEALS_READ,
}
WRITE_SCOPES = {
    "contact": Scope.CONTACTS_WRITE,
    "company": Scope.COMPANIES_WRITE,
    "deal": Scope.DEALS_WRITE,
}
_ADMINS = frozenset({Role.OWNER, Role.ADMIN})


@dataclass
class ListSpec:
    """What a list shows: its fields, checked filters, sort, columns, ``q`` and view."""

    object_type: str
    fields: dict[str, FieldSpec]
    filters: list[Filter] = field(default_factory=list)
    sort: Sort = field(default_factory=lambda: Sort("updated_at", descending=True))
    columns: list[str] = field(default_factory=list)
    q: str = ""
    view: SavedViewOut | None = None

    @property
    def default_sort(self) -> bool:
        """Whether the list is in its natural order (most recently updated first)."""
        return str(self.sort) == DEFAULT_SORT


def may_edit(ctx: TenantContext, owner_id: UUID | None, *, shared: bool) -> bool:
    """Whether ``ctx`` may change or delete a view saved by ``owner_id``."""
    if owner_id is not None and owner_id == ctx.membership_id:
        return True
    return shared and (ctx.role in _ADMINS or ctx.api_key_id is not None)


def view_out(ctx: TenantContext, row: Any) -> SavedViewOut:
    """A database row as the API's saved view."""

    def loaded(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    return SavedViewOut(
        id=row["id"],
        object_type=row["object_type"],
        name=row["name"],
        owner_id=row["owner_id"],
        shared=row["shared"],
        q=row["q"],
        filters=list(loaded(row["filters"])),
        sort=row["sort"],
        columns=list(loaded(row["columns"])),
        editable=may_edit(ctx, row["owner_id"], shared=row["shared"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SavedViewService:
    """Saved views of one workspace, as one member (or API key) sees them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def fields(self, ctx: TenantContext, object_type: str) -> dict[str, FieldSpec]:
        """The fields lists of ``object_type`` filter and sort by, custom ones included."""
        definitions = await CustomFieldService(self.db).definitions(ctx, [object_type])
        return catalog(object_type, definitions)

    async def find(self, ctx: TenantContext, object_type: str | None = None) -> list[SavedViewOut]:
        """The caller's views and the shared ones, by type and name."""
        types = [object_type] if object_type else list(READ_SCOPES)
        for kind in types:
            if kind not in READ_SCOPES:
                reason = f"must be one of {', '.join(READ_SCOPES)}"
                raise InvalidInputError(f"object_type {reason}", fields={"object_type": reason})
        if object_type:
            ctx.require(READ_SCOPES[object_type])
        readable = [kind for kind in types if READ_SCOPES[kind] in ctx.scopes]
        rows = await self.db.fetch(
            """
            SELECT * FROM saved_views
            WHERE tenant_id = $1 AND object_type = ANY($2::text[])
              AND (shared OR owner_id = $3)
            ORDER BY object_type, lower(name), id
            """,
            ctx.tenant_id,
            readable,
            ctx.membership_id,
        )
        return [view_out(ctx, row) for row in rows]

    async def get(self, ctx: TenantContext, view_id: UUID) -> SavedViewOut:
        """One view the caller may see; 404 otherwise (another member's private view too)."""
        row = await self.db.fetchrow(
            "SELECT * FROM saved_views WHERE tenant_id = $1 AND id = $2 "
            "AND (shared OR owner_id = $3)",
            ctx.tenant_id,
            view_id,
            ctx.membership_id,
        )
        if row is None or READ_SCOPES[row["object_type"]] not in ctx.scopes:
            raise NotFoundError(f"view {view_id} not found in this workspace")
        return view_out(ctx, row)

    async def create(self, ctx: TenantContext, data: SavedViewIn) -> SavedViewOut:
        """Save a view after checking its filters, sort and columns against the fields."""
        ctx.require(READ_SCOPES[data.object_type])
        values = await self._checked(ctx, data.object_type, msgspec.structs.asdict(data))
        if ctx.membership_id is not None:
            count = await self.db.fetchval(
                "SELECT count(*) FROM saved_views WHERE tenant_id = $1 AND owner_id = $2",
                ctx.tenant_id,
                ctx.membership_id,
            )
            if count >= MAX_VIEWS_PER_MEMBER:
                reason = f"you have the maximum of {MAX_VIEWS_PER_MEMBER} saved views"
                raise InvalidInputError(reason, fields={"name": reason})
        row = await self.db.fetchrow(
            """
            INSERT INTO saved_views (tenant_id, id, object_type, name, owner_id, shared, q,
                                     filters, sort, columns)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::jsonb) RETURNING *
            """,
            ctx.tenant_id,
            new_id(),
            data.object_type,
            values["name"],
            ctx.membership_id,
            values["shared"],
            values["q"],
            json.dumps(values["filters"]),
            values["sort"],
            json.dumps(values["columns"]),
        )
        return view_out(ctx, row)

    async def update(
        self, ctx: TenantContext, view_id: UUID, patch: SavedViewPatch
    ) -> SavedViewOut:
        """Change a view the caller may edit (a 403 for a shared view of someone else)."""
        current = await self.get(ctx, view_id)
        if not current.editable:
            msg = "only whoever saved this view, or an owner or admin, may change it"
            raise PermissionDeniedError(msg)
        merged = msgspec.structs.asdict(current)
        merged.update(
            {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        )
        values = await self._checked(ctx, current.object_type, merged)
        row = await self.db.fetchrow(
            """
            UPDATE saved_views SET name = $3, shared = $4, q = $5, filters = $6::jsonb,
                sort = $7, columns = $8::jsonb, updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING *
            """,
            ctx.tenant_id,
            view_id,
            values["name"],
            values["shared"],
            values["q"],
            json.dumps(values["filters"]),
            values["sort"],
            json.dumps(values["columns"]),
        )
        if row is None:
            raise NotFoundError(f"view {view_id} not found in this workspace")
        return view_out(ctx, row)

    async def delete(self, ctx: TenantContext, view_id: UUID) -> None:
        """Delete a view the caller may edit."""
        current = await self.get(ctx, view_id)
        if not current.editable:
            msg = "only whoever saved this view, or an owner or admin, may delete it"
            raise PermissionDeniedError(msg)
        await self.db.execute(
            "DELETE FROM saved_views WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, view_id
        )

    async def list_spec(
        self,
        ctx: TenantContext,
        object_type: str,
        *,
        view_id: UUID | None = None,
        filters: Any = None,
        sort: str | None = None,
        columns: Any = None,
        q: str | None = None,
    ) -> ListSpec:
        """What a list request asks for: a view's settings, then the request's own on top.

        Filters add up (the view's and the request's must all hold); ``sort``,
        ``columns`` and ``q``, when given, replace the view's.
        """
        fields = await self.fields(ctx, object_type)
        view = await self.get(ctx, view_id) if view_id is not None else None
        if view is not None and view.object_type != object_type:
            reason = f"view {view.id} is a {view.object_type} view, not a {object_type} view"
            raise InvalidInputError(reason, fields={"view": reason})
        chosen = parse_filters(view.filters, fields, "view.filters") if view else []
        chosen += parse_filters(filters, fields)
        return ListSpec(
            object_type=object_type,
            fields=fields,
            filters=chosen,
            sort=parse_sort(sort or (view.sort if view else None), fields),
            columns=parse_columns(columns, fields) or (view.columns if view else []),
            q=checked_query(q) or (view.q if view else ""),
            view=view,
        )

    async def _checked(
        self, ctx: TenantContext, object_type: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        fields = await self.fields(ctx, object_type)
        name = str(data["name"]).strip()
        if not name:
            raise InvalidInputError("name must not be blank", fields={"name": "must not be blank"})
        shared = bool(data["shared"]) or ctx.membership_id is None
        if shared and WRITE_SCOPES[object_type] not in ctx.scopes:
            msg = f"sharing a {object_type} view needs the {WRITE_SCOPES[object_type]} permission"
            raise PermissionDeniedError(msg)
        filters = parse_filters(data["filters"], fields)
        return {
            "name": name,
            "shared": shared,
            "q": checked_query(data["q"]),
            "filters": [_stored(item) for item in filters],
            "sort": str(parse_sort(data["sort"], fields)),
            "columns": parse_columns(data["columns"], fields),
        }


def _stored(item: Filter) -> dict[str, Any]:
    """A checked filter as JSON (numbers, dates and ids as text, read back by the parser)."""

    def plain(value: Any) -> Any:
        if isinstance(value, bool | str) or value is None:
            return value
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    return {"field": item.field, "op": item.op, "value": plain(item.value)}
