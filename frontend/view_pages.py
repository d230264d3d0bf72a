"""Saved views on the list pages: the view picker, the filter builder, sort, columns, counts.

The filter builder posts rows of ``ff`` (field), ``fo`` (operator) and ``fv``
(value) — ``in`` takes comma-separated values, ``range`` ``min..max`` — which
become the list's ``filters``; links carry them on as ``filters=<JSON>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template  # noqa: TC002 - Litestar reads return types

from orbit.platform.crm.companies import CompanyService
from orbit.platform.crm.custom_fields import custom_filters
from orbit.platform.crm.deals import DealService
from orbit.platform.crm.listing import OPERATORS, FieldSpec
from orbit.platform.crm.schemas import ListCount, SavedViewIn, SavedViewOut
from orbit.platform.crm.service import ContactService
from orbit.platform.crm.views import READ_SCOPES, WRITE_SCOPES, ListSpec, SavedViewService
from orbit.platform.errors import InvalidInputError
from orbit.platform.ids import parse_id
from orbit.tenants.context import Principal, TenantContext  # noqa: TC001 - injected

AnyRequest = Request[Any, Any, Any]
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
LIST_URLS = {"contact": "contacts", "company": "companies", "deal": "deals/list"}
_STATUSES = frozenset({"open", "won", "lost"})
OPERATOR_LABELS = {
    "equals": "is",
    "contains": "contains",
    "in": "is any of",
    "range": "between",
    "empty": "is empty",
}


@dataclass
class ViewState:
    """What the view bar shows and what the list's links carry on."""

    object_type: str
    spec: ListSpec | None
    views: list[SavedViewOut]
    fields: dict[str, FieldSpec]
    rows: list[dict[str, str]] = field(default_factory=list)
    """The filter builder's rows as given (field, op, value) for re-display."""
    sort: str = ""
    columns: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    notice: str | None = None

    @property
    def query(self) -> str:
        """The view, filters, sort and columns as a query string for links."""
        return urlencode(self.params)

    @property
    def save_filters(self) -> str:
        """The filters "Save view" keeps, as JSON: the request's, else the applied view's."""
        if "filters" in self.params:
            return self.params["filters"]
        return json.dumps(self.view.filters if self.view else [])

    @property
    def view(self) -> SavedViewOut | None:
        """The applied saved view."""
        return self.spec.view if self.spec else None


def _form_filters(
    items: list[tuple[str, str]],
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The builder's rows as API filters (blank rows skipped) and as given."""
    fields = [v for k, v in items if k == "ff"]
    ops = [v for k, v in items if k == "fo"]
    values = [v for k, v in items if k == "fv"]
    filters: list[dict[str, Any]] = []
    rows: list[dict[str, str]] = []
    for index, name in enumerate(fields):
        op = ops[index] if index < len(ops) else ""
        raw = values[index] if index < len(values) else ""
        if not name:
            continue
        rows.append({"field": name, "op": op, "value": raw})
        value: Any = raw
        if op == "in":
            value = [part.strip() for part in raw.split(",") if part.strip()]
        elif op == "range":
            low, _, high = raw.partition("..")
            value = {"min": low.strip() or None, "max": high.strip() or None}
        elif op == "empty":
            value = raw != "no"
        filters.append({"field": name, "op": op, "value": value})
    return filters, rows


def _rows_of(filters: list[dict[str, Any]]) -> list[dict[str, str]]:
    """API filters back as the builder's rows."""
    rows = []
    for item in filters:
        value = item.get("value")
        if isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = f"{value.get('min') or ''}..{value.get('max') or ''}"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        else:
            text = "" if value is None else str(value)
        rows.append({"field": str(item.get("field")), "op": str(item.get("op")), "value": text})
    return rows


async def view_state(
    request: AnyRequest, views: SavedViewService, tenant: TenantContext, object_type: str
) -> ViewState:
    """Read the view bar's parameters; a malformed filter becomes the page's notice."""
    items = [(k, str(v)) for k, v in request.query_params.multi_items()]
    params = dict(items)
    filters, rows = _form_filters(items)
    if not filters and params.get("filters"):
        try:
            filters = json.loads(params["filters"])
            rows = _rows_of(filters) if isinstance(filters, list) else []
        except ValueError:
            filters = params["filters"]  # type: ignore[assignment] # the service names it
    columns = [v for k, v in items if k == "col"] or params.get("columns", "").split(",")
    columns = [c for c in columns if c]
    carried = {
        name: value
        for name, value in (
            ("view", params.get("view", "")),
            ("sort", params.get("sort", "")),
            ("filters", json.dumps(filters) if filters else ""),
            ("columns", ",".join(columns)),
        )
        if value
    }
    state = ViewState(
        object_type=object_type,
        spec=None,
        views=await views.find(tenant, object_type),
        fields=await views.fields(tenant, object_type),
        rows=rows,
        sort=params.get("sort", ""),
        params=carried,
    )
    if not carried:
        return state
    try:
        state.spec = await views.list_spec(
            tenant,
            object_type,
            view_id=parse_id(carried["view"], "view") if "view" in carried else None,
            filters=filters or None,
            sort=carried.get("sort"),
            columns=columns or None,
        )
    except InvalidInputError as exc:
        state.notice = exc.message
        return state
    if state.spec.view is not None and not rows:
        state.rows = _rows_of(state.spec.view.filters)
    state.sort = state.sort or (state.spec.view.sort if state.spec.view else "")
    state.columns = state.spec.columns
    return state


def cell(item: Any, column: str) -> str:
    """One record's value for a chosen column, as text."""
    if column.startswith("custom."):
        value = item.custom.get(column.removeprefix("custom."))
    elif column == "company_id" and hasattr(item, "company_name"):
        value = item.company_name
    elif column == "stage_id" and hasattr(item, "stage_name"):
        value = item.stage_name
    else:
        value = getattr(item, column, None)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d"))
    return str(value)


def view_context(state: ViewState, tenant: TenantContext) -> dict[str, Any]:
    """Template variables for the view bar and the chosen columns."""
    return {
        "views_state": state,
        "operator_labels": OPERATOR_LABELS,
        "operators": OPERATORS,
        "cell": cell,
        "list_url": f"/t/{tenant.tenant_slug}/{LIST_URLS[state.object_type]}",
        "may_share": WRITE_SCOPES[state.object_type] in tenant.scopes,
    }


class ViewPages(Controller):
    """The view bar's helpers: a filter row, the count, saving and deleting views."""

    path = "/t/{slug:str}/views"
    include_in_schema = False

    @get("/filter-row")
    async def filter_row(
        self,
        principal: Principal,
        tenant: TenantContext,
        views: SavedViewService,
        object_type: str,
        ff: str = "",
    ) -> Template:
        """One row of the filter builder; its operators follow the chosen field's kind."""
        from orbit.frontend.pages import page  # noqa: PLC0415 - pages imports this module

        kind = _object_type(object_type)
        tenant.require(READ_SCOPES[kind])
        fields = await views.fields(tenant, kind)
        return page(
            "views/_filter_row.html",
            principal,
            fields=fields,
            row={"field": ff if ff in fields else "", "op": "", "value": ""},
            operators=OPERATORS,
            operator_labels=OPERATOR_LABELS,
            object_type=kind,
        )

    @get("/count")
    async def count(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        views: SavedViewService,
        object_type: str,
        q: str = "",
        exact: bool = False,
    ) -> Template:
        """The list's count: an estimate with an "exact count" button, or exact."""
        from orbit.frontend.pages import page  # noqa: PLC0415 - pages imports this module

        kind = _object_type(object_type)
        state = await view_state(request, views, tenant, kind)
        result: ListCount | None = None
        if state.notice is None:
            services: dict[str, ContactService | CompanyService | DealService] = {
                "contact": ContactService(views.db),
                "company": CompanyService(views.db),
                "deal": DealService(views.db),
            }
            custom = custom_filters(request.query_params.multi_items())
            if kind == "deal":
                params = request.query_params
                result = await DealService(views.db).count(
                    tenant,
                    q=q,
                    custom=custom,
                    spec=state.spec,
                    status=params.get("status") if params.get("status") in _STATUSES else None,
                    pipeline_id=parse_id(params["pipeline_id"], "pipeline")
                    if params.get("pipeline_id")
                    else None,
                    exact=exact,
                )
            else:
                result = await services[kind].count(
                    tenant, q=q, custom=custom, spec=state.spec, exact=exact
                )
        return page(
            "views/_count.html",
            principal,
            result=result,
            request_url=f"{request.url.path}?{request.url.query}",
            object_type=kind,
            q=q,
            views_state=state,
        )

    @post("/")
    async def save(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        views: SavedViewService,
        data: Form,
    ) -> Response[Any]:
        """Save the list's current filters, sort and columns as a view; then show it."""
        from orbit.frontend.pages import go  # noqa: PLC0415 - pages imports this module

        kind = _object_type(str(data.get("object_type", "")))
        filters = json.loads(str(data.get("filters") or "[]"))
        columns = [c for c in str(data.get("columns", "")).split(",") if c]
        created = await views.create(
            tenant,
            SavedViewIn(
                object_type=kind,  # type: ignore[arg-type] # checked above
                name=str(data.get("name", "")).strip()[:100] or "View",
                shared=data.get("shared") == "on",
                q=str(data.get("q", ""))[:200],
                filters=filters if isinstance(filters, list) else [],
                sort=str(data.get("sort") or "-updated_at")[:120],
                columns=columns[:30],
            ),
        )
        return go(request, f"/t/{tenant.tenant_slug}/{LIST_URLS[kind]}?view={created.id}")

    @post("/{view_id:str}/delete")
    async def delete(
        self, request: AnyRequest, tenant: TenantContext, views: SavedViewService, view_id: str
    ) -> Response[Any]:
        """Delete a view; back to the plain list."""
        from orbit.frontend.pages import go  # noqa: PLC0415 - pages imports this module

        view = await views.get(tenant, parse_id(view_id, "view"))
        await views.delete(tenant, view.id)
        return go(request, f"/t/{tenant.tenant_slug}/{LIST_URLS[view.object_type]}")


def _object_type(value: str) -> str:
    if value not in READ_SCOPES:
        reason = f"must be one of {', '.join(READ_SCOPES)}"
        raise InvalidInputError(f"object_type {reason}", fields={"object_type": reason})
    return value
