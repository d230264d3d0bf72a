"""Pages for dedupe and merge: possible duplicates, the side-by-side merge form, the hint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.response import Template

from orbit.frontend.pages import custom_fields_of, go, page
from orbit.platform.crm.companies import company_out
from orbit.platform.crm.merge import COMPANIES, CONTACTS, MergeService, RecordKind
from orbit.platform.crm.schemas import MergeIn
from orbit.platform.crm.service import display_name
from orbit.platform.errors import NotFoundError, OrbitError
from orbit.platform.ids import parse_id
from orbit.tenants.context import Principal, TenantContext

if TYPE_CHECKING:
    from orbit.platform.crm.schemas import CompanyOut, ContactOut

AnyRequest = Request[Any, Any, Any]
_KINDS = {"contacts": CONTACTS, "companies": COMPANIES}
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _plural(request: AnyRequest) -> tuple[str, RecordKind]:
    """Which record type the path is about: ``/t/{slug}/contacts/…`` or ``…/companies/…``."""
    plural = request.url.path.split("/")[3]
    return plural, _KINDS[plural]


def _label(record: ContactOut | CompanyOut) -> str:
    if hasattr(record, "first_name"):
        return display_name(record)  # type: ignore[arg-type]
    return str(getattr(record, "name", ""))


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One row of the merge form: a field, each record's value, the one picked now."""

    name: str
    custom_label: str | None
    """The custom field's label (standard fields are named by the template)."""
    values: list[str]
    picked: UUID
    differs: bool


class MergePages(Controller):
    """``/t/{slug}/contacts/duplicates``, ``/…/merge`` and the same for companies."""

    path = "/t/{slug:str}"
    include_in_schema = False

    @get(["/contacts/duplicates", "/companies/duplicates"])
    async def duplicates(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        merges: MergeService,
        reason: str | None = None,
        cursor: str | None = None,
    ) -> Template:
        """The possible duplicates of one record type, grouped, with a merge link each."""
        plural, kind = _plural(request)
        if kind is CONTACTS:
            found = await merges.contact_duplicates(tenant, reason=reason or None, cursor=cursor)
            groups = [(g.reason, g.contacts) for g in found.items]
        else:
            found_companies = await merges.company_duplicates(
                tenant, reason=reason or None, cursor=cursor
            )
            groups = [(g.reason, g.companies) for g in found_companies.items]  # type: ignore[misc]
            found = found_companies  # type: ignore[assignment]
        base = f"/t/{tenant.tenant_slug}/{plural}"
        return page(
            "merge/duplicates.html",
            principal,
            plural=plural,
            base=base,
            groups=[
                {
                    "reason": r,
                    "records": [(record.id, _label(record)) for record in records],
                    "merge_url": f"{base}/merge?"
                    + urlencode([("ids", str(record.id)) for record in records]),
                }
                for r, records in groups
            ],
            reasons=kind.reasons,
            reason=reason or "",
            next_url=f"{base}/duplicates?"
            + urlencode({"cursor": found.next_cursor, **({"reason": reason} if reason else {})})
            if found.next_cursor
            else None,
            can_write=kind.write in tenant.scopes,
        )

    @get(
        ["/contacts/{record_id:str}/duplicates-hint", "/companies/{record_id:str}/duplicates-hint"]
    )
    async def hint(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        merges: MergeService,
        record_id: str,
    ) -> Template:
        """A line for a record's page naming its likely duplicates (empty when none)."""
        plural, kind = _plural(request)
        parsed = parse_id(record_id, kind.record_type)
        found = await merges.duplicates_of(tenant, kind, parsed)
        base = f"/t/{tenant.tenant_slug}/{plural}"
        ids = [("ids", str(parsed))] + [("ids", str(d.id)) for d in found[:9]]
        return page(
            "merge/_hint.html",
            principal,
            base=base,
            duplicates=found,
            merge_url=f"{base}/merge?{urlencode(ids)}",
            can_write=kind.write in tenant.scopes,
        )

    @get(["/contacts/merge", "/companies/merge"])
    async def merge_form(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        merges: MergeService,
    ) -> Template:
        """Records side by side: pick the survivor and, per field, the value that stays."""
        plural, kind = _plural(request)
        tenant.require(kind.write)
        ids = [parse_id(i, kind.record_type) for i in request.query_params.getall("ids", [])]
        return await self._form(principal, tenant, merges, plural, kind, ids, {}, None, {})

    @post(["/contacts/merge", "/companies/merge"])
    async def merge(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        merges: MergeService,
    ) -> Response[Any]:
        """Merge as the form says; problems come back on the form (422)."""
        plural, kind = _plural(request)
        form = await request.form()
        ids = [parse_id(i, kind.record_type) for i in form.getall("ids", [])]
        raw_survivor = form.get("survivor") or (str(ids[0]) if ids else "")
        survivor = parse_id(str(raw_survivor), kind.record_type)
        choices = {
            key.removeprefix("choice."): parse_id(str(value), kind.record_type)
            for key, value in form.items()
            if key.startswith("choice.") and value
        }
        data = MergeIn(
            survivor_id=survivor,
            merged_ids=[i for i in ids if i != survivor],
            choices=choices,
        )
        try:
            if kind is CONTACTS:
                await merges.merge_contacts(tenant, data)
            else:
                await merges.merge_companies(tenant, data)
        except OrbitError as exc:
            if exc.status_code == 404:  # noqa: PLR2004 - not found stays not found
                raise
            return await self._form(
                principal,
                tenant,
                merges,
                plural,
                kind,
                ids,
                choices,
                survivor,
                exc.fields,
                message=exc.message,
            )
        return go(request, f"/t/{tenant.tenant_slug}/{plural}/{survivor}")

    async def _form(
        self,
        principal: Principal,
        tenant: TenantContext,
        merges: MergeService,
        plural: str,
        kind: RecordKind,
        ids: list[UUID],
        choices: dict[str, UUID],
        survivor: UUID | None,
        errors: dict[str, str],
        message: str | None = None,
    ) -> Template:
        records = await self._records(tenant, merges, kind, ids)
        survivor = (
            survivor
            if survivor in {r["id"] for r in records}
            else (records[0]["id"] if records else None)
        )
        custom_fields = await custom_fields_of(merges.db, tenant, kind.record_type)
        owners = await self._owner_names(tenant, merges)
        rows: list[FieldRow] = []
        names = list(kind.fields) + [f"custom.{f.key}" for f in custom_fields]
        names += sorted({f"custom.{k}" for r in records for k in r["custom"]} - set(names))
        custom_labels = {f"custom.{f.key}": f.label for f in custom_fields}
        for name in names:
            values = [self._value(record, name, owners) for record in records]
            if all(v == "" for v in values):
                continue
            order = sorted(range(len(records)), key=lambda i: records[i]["id"] != survivor)
            default = next((i for i in order if values[i] != ""), order[0] if order else 0)
            picked = choices.get(name) or records[default]["id"]
            rows.append(
                FieldRow(
                    name=name,
                    custom_label=custom_labels.get(name, name.removeprefix("custom."))
                    if name.startswith("custom.")
                    else None,
                    values=values,
                    picked=picked,
                    differs=len(set(values)) > 1,
                )
            )
        return page(
            "merge/form.html",
            principal,
            status_code=422 if errors or message else 200,
            plural=plural,
            base=f"/t/{tenant.tenant_slug}/{plural}",
            records=records,
            survivor=survivor,
            rows=rows,
            errors=errors,
            message=message,
            tags=sorted({t for r in records for t in r["tags"]}),
        )

    @staticmethod
    def _value(record: dict[str, Any], name: str, owners: dict[UUID, str]) -> str:
        if name.startswith("custom."):
            value = record["custom"].get(name.removeprefix("custom."))
        elif name == "company_id":
            value = record.get("company_name")
        elif name == "owner_id":
            value = owners.get(record["owner_id"]) if record["owner_id"] else None
        else:
            value = record.get(name)
        if value in _EMPTY:
            return ""
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    @staticmethod
    async def _records(
        tenant: TenantContext, merges: MergeService, kind: RecordKind, ids: list[UUID]
    ) -> list[dict[str, Any]]:
        """The records to merge, in the order given; a 404 names one that is not visible."""
        tenant.require(kind.read)
        unique = list(dict.fromkeys(ids))
        if kind is CONTACTS:
            contacts = await merges._contact_outs(tenant, unique)  # noqa: SLF001 - same feature
            found: dict[UUID, Any] = dict(contacts)
        else:
            rows = await merges._rows(tenant, kind, unique)  # noqa: SLF001 - same feature
            found = {i: company_out(row) for i, row in rows.items()}
        missing = [i for i in unique if i not in found]
        if missing:
            raise NotFoundError(f"{kind.record_type} {missing[0]} not found in this workspace")
        out = []
        for record_id in unique:
            record = found[record_id]
            values = {f: getattr(record, f, None) for f in record.__struct_fields__}
            values["label"] = _label(record)
            out.append(values)
        return out

    @staticmethod
    async def _owner_names(tenant: TenantContext, merges: MergeService) -> dict[UUID, str]:
        rows = await merges.db.fetch(
            "SELECT m.id, coalesce(nullif(u.name, ''), u.email) AS name FROM memberships m "
            "JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1",
            tenant.tenant_id,
        )
        return {row["id"]: row["name"] for row in rows}
