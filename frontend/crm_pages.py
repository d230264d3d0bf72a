"""Pages for companies, deals (list, kanban board, detail) and logging activities."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from orbit.frontend.pages import (
    convert_form,
    custom_fields_of,
    custom_form_prefill,
    custom_form_values,
    go,
    invalid,
    list_filters,
    live_list,
    page,
)
from orbit.frontend.view_pages import view_context, view_state
from orbit.platform import validation
from orbit.platform.audit.service import AuditService
from orbit.platform.crm.activities import ActivityService
from orbit.platform.crm.companies import CompanyService
from orbit.platform.crm.dashboard import DashboardService
from orbit.platform.crm.deals import DealService, PipelineService
from orbit.platform.crm.schemas import (
    ActivityIn,
    CompanyCreate,
    CompanyPatch,
    DealCreate,
    DealMove,
    TaskIn,
)
from orbit.platform.crm.tasks import NotificationService, TaskService
from orbit.platform.crm.views import SavedViewService
from orbit.platform.errors import OrbitError
from orbit.platform.ids import parse_id
from orbit.platform.runtime import Runtime
from orbit.plugins.ui import dashboard_widgets, record_plugins
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.roles import Scope

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]

_COMPANY_FIELDS = ("name", "domain", "industry", "size", "address", "phone")
_DEAL_FIELDS = ("title", "amount", "currency", "expected_close_date", "stage_id", "company_id")


def _values(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Form fields trimmed; empty optional ones become absent (``None``)."""
    values: dict[str, Any] = {}
    for field in fields:
        value = str(data.get(field, "")).strip()
        values[field] = value or None
    tags = [t.strip() for t in str(data.get("tags", "")).split(",") if t.strip()]
    if "tags" in data:
        values["tags"] = tags
    return values


def _in_zone(raw: str, time_zone: str) -> str:
    """A ``datetime-local`` form value as an ISO time in the user's zone (kept if unparsable)."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return raw  # the DTO names the field
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(time_zone))
    return moment.isoformat()


class CrmPages(Controller):
    """Companies, deals and the timeline inside a workspace."""

    path = "/t/{slug:str}"
    include_in_schema = False

    @get("/")
    async def dashboard(
        self,
        principal: Principal,
        tenant: TenantContext,
        dashboards: DashboardService,
        runtime: Runtime,
    ) -> Template:
        """The first page after login: pipeline, wins, today's tasks, newest contacts."""
        board = await dashboards.build(tenant, time_zone=principal.time_zone)
        widgets = await dashboard_widgets(runtime.plugins, tenant)
        return page("dashboard.html", principal, board=board, plugin_slots={"dashboard": widgets})

    @get("/tasks")
    async def task_list(
        self, principal: Principal, tenant: TenantContext, tasks: TaskService
    ) -> Template:
        """My tasks: overdue, today, upcoming."""
        return await self._tasks_page(principal, tenant, tasks)

    @post("/tasks")
    async def create_task(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        tasks: TaskService,
        data: Form,
    ) -> Response[Any]:
        """Add a task from the form; its times are in the user's time zone."""
        values: dict[str, Any] = {
            "title": str(data.get("title", "")),
            "priority": str(data.get("priority", "normal")),
            "recurrence": str(data.get("recurrence", "none")),
        }
        for field in ("due_at", "remind_at"):
            raw = str(data.get(field, "")).strip()
            if raw:
                values[field] = _in_zone(raw, principal.time_zone)
        try:
            problems = validation.FieldProblems()
            problems.check(validation.text, values["title"], "title", max_length=300, required=True)
            if "due_at" not in values:
                problems.add("due_at", "is required")
            problems.raise_any()
            await tasks.create(tenant, convert_form(TaskIn, values))
        except OrbitError as exc:
            return await self._tasks_page(
                principal, tenant, tasks, status_code=422, form=data, errors=exc.fields
            )
        return go(request, f"/t/{tenant.tenant_slug}/tasks")

    @post("/tasks/{task_id:str}/complete")
    async def complete_task(
        self, request: AnyRequest, tenant: TenantContext, tasks: TaskService, task_id: str
    ) -> Response[Any]:
        """Tick a task off."""
        await tasks.complete(tenant, parse_id(task_id, "task"))
        return go(request, f"/t/{tenant.tenant_slug}/tasks")

    async def _tasks_page(
        self,
        principal: Principal,
        tenant: TenantContext,
        tasks: TaskService,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        now = datetime.now(ZoneInfo(principal.time_zone))
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        open_tasks = await tasks.mine(tenant)
        groups = {
            "overdue": [t for t in open_tasks if t.due_at < start],
            "today": [t for t in open_tasks if start <= t.due_at < start + timedelta(days=1)],
            "upcoming": [t for t in open_tasks if t.due_at >= start + timedelta(days=1)],
        }
        context.setdefault("form", {})
        context.setdefault("errors", {})
        return page("tasks.html", principal, status_code=status_code, groups=groups, **context)

    @get("/notifications")
    async def notification_list(
        self, principal: Principal, tenant: TenantContext, notifications: NotificationService
    ) -> Template:
        """The bell's notifications."""
        return page("notifications.html", principal, inbox=await notifications.inbox(tenant))

    @get("/notifications/count")
    async def notification_count(
        self, tenant: TenantContext, notifications: NotificationService
    ) -> Response[str]:
        """The unread count next to the bell (polled by htmx)."""
        unread = (await notifications.inbox(tenant, limit=1)).unread
        return Response(str(unread) if unread else "", media_type="text/plain")

    # Companies -----------------------------------------------------------------------

    @get("/companies")
    async def company_list(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        companies: CompanyService,
        q: str = "",
        cursor: str | None = None,
    ) -> Template:
        """Companies with live search and saved views; htmx asks for just the rows."""
        filters = await list_filters(request, companies.db, tenant, "company")
        state = await view_state(request, SavedViewService(companies.db), tenant, "company")
        result = await companies.find(
            tenant, q=q, cursor=cursor, custom=filters.custom, spec=state.spec
        )
        return live_list(
            request,
            "companies",
            principal,
            companies=result.items,
            items=result.items,
            detail_url=f"/t/{tenant.tenant_slug}/companies",
            next_cursor=result.next_cursor,
            q=q,
            filters=filters,
            can_write=Scope.COMPANIES_WRITE in tenant.scopes,
            **view_context(state, tenant),
        )

    @get("/companies/new")
    async def new_company(
        self, principal: Principal, tenant: TenantContext, companies: CompanyService
    ) -> Template:
        """An empty company form."""
        tenant.require(Scope.COMPANIES_WRITE)
        fields = await custom_fields_of(companies.db, tenant, "company")
        return page(
            "companies/form.html", principal, company=None, form={}, errors={}, custom_fields=fields
        )

    @post("/companies")
    async def create_company(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        companies: CompanyService,
        data: Form,
    ) -> Response[Any]:
        """Create from the form; errors come back inline."""
        fields = await custom_fields_of(companies.db, tenant, "company")
        try:
            values = _values(data, _COMPANY_FIELDS)
            values["name"] = values["name"] or ""
            values["custom"] = custom_form_values(data, fields)
            created = await companies.create(tenant, convert_form(CompanyCreate, values))
        except OrbitError as exc:
            return invalid(
                "companies/form.html", principal, exc, company=None, form=data, custom_fields=fields
            )
        return go(request, f"/t/{tenant.tenant_slug}/companies/{created.id}")

    @get("/companies/{company_id:str}")
    async def company_detail(
        self,
        principal: Principal,
        tenant: TenantContext,
        companies: CompanyService,
        runtime: Runtime,
        company_id: str,
    ) -> Template:
        """A company with its people, deals and merged timeline."""
        company = await companies.get(tenant, parse_id(company_id, "company"))
        people = await companies.db.fetch(
            "SELECT id, first_name, last_name, email FROM contacts "
            "WHERE tenant_id = $1 AND company_id = $2 ORDER BY last_name, first_name LIMIT 100",
            tenant.tenant_id,
            company.id,
        )
        return page(
            "companies/detail.html",
            principal,
            company=company,
            people=people,
            deals=(await DealService(companies.db).find(tenant, company_id=company.id)).items,
            timeline=await ActivityService(companies.db).timeline(tenant, "company", company.id),
            history=(await AuditService(companies.db).history(tenant, "company", company.id)).items,
            can_write=Scope.COMPANIES_WRITE in tenant.scopes,
            custom_fields=await custom_fields_of(companies.db, tenant, "company"),
            **await record_plugins(runtime.plugins, tenant, "company", company.id),
        )

    @get("/companies/{company_id:str}/edit")
    async def edit_company(
        self,
        principal: Principal,
        tenant: TenantContext,
        companies: CompanyService,
        company_id: str,
    ) -> Template:
        """The company form, filled in."""
        tenant.require(Scope.COMPANIES_WRITE)
        company = await companies.get(tenant, parse_id(company_id, "company"))
        fields = await custom_fields_of(companies.db, tenant, "company")
        form = msgspec.structs.asdict(company)
        form["tags"] = ", ".join(company.tags)
        form.update(custom_form_prefill(company.custom, fields))
        return page(
            "companies/form.html",
            principal,
            company=company,
            form=form,
            errors={},
            custom_fields=fields,
        )

    @post("/companies/{company_id:str}")
    async def update_company(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        companies: CompanyService,
        company_id: str,
        data: Form,
    ) -> Response[Any]:
        """Save the form; errors come back inline."""
        company = await companies.get(tenant, parse_id(company_id, "company"))
        fields = await custom_fields_of(companies.db, tenant, "company")
        try:
            values = _values(data, _COMPANY_FIELDS)
            values["name"] = values["name"] or ""
            # Free-form values the form does not show are kept.
            values["custom"] = company.custom | custom_form_values(data, fields)
            await companies.update(tenant, company.id, convert_form(CompanyPatch, values))
        except OrbitError as exc:
            return invalid(
                "companies/form.html",
                principal,
                exc,
                company=company,
                form=data,
                custom_fields=fields,
            )
        return go(request, f"/t/{tenant.tenant_slug}/companies/{company.id}")

    @post("/companies/{company_id:str}/delete")
    async def delete_company(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        companies: CompanyService,
        company_id: str,
    ) -> Response[Any]:
        """Delete and return to the list."""
        await companies.delete(tenant, parse_id(company_id, "company"))
        return go(request, f"/t/{tenant.tenant_slug}/companies")

    # Deals ---------------------------------------------------------------------------

    @get("/deals")
    async def deal_board(
        self,
        principal: Principal,
        tenant: TenantContext,
        deals: DealService,
        pipelines: PipelineService,
        pipeline_id: str | None = None,
    ) -> Template:
        """The kanban board of one pipeline: a column per stage, drag a card to move it."""
        all_pipelines = await pipelines.all(tenant)
        if not all_pipelines:
            return page("deals/board.html", principal, pipeline=None, pipelines=[], columns=[])
        chosen = all_pipelines[0]
        if pipeline_id:
            chosen = await pipelines.get(tenant, parse_id(pipeline_id, "pipeline"))
        found = await deals.find(tenant, pipeline_id=chosen.id, limit=200)
        columns = [
            (stage, [d for d in found.items if d.stage_id == stage.id]) for stage in chosen.stages
        ]
        return page(
            "deals/board.html",
            principal,
            pipeline=chosen,
            pipelines=all_pipelines,
            columns=columns,
            truncated=found.next_cursor is not None,
            can_write=Scope.DEALS_WRITE in tenant.scopes,
        )

    @get("/deals/list")
    async def deal_list(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        deals: DealService,
        pipelines: PipelineService,
        q: str = "",
        status: str = "",
        pipeline_id: str = "",
        cursor: str | None = None,
    ) -> Template:
        """All deals as a table, filtered by text, status and pipeline."""
        statuses = {"open", "won", "lost"}
        filters = await list_filters(request, deals.db, tenant, "deal")
        state = await view_state(request, SavedViewService(deals.db), tenant, "deal")
        result = await deals.find(
            tenant,
            q=q,
            status=status if status in statuses else None,
            pipeline_id=parse_id(pipeline_id, "pipeline") if pipeline_id else None,
            cursor=cursor,
            custom=filters.custom,
            spec=state.spec,
        )
        return live_list(
            request,
            "deals",
            principal,
            **view_context(state, tenant),
            items=result.items,
            detail_url=f"/t/{tenant.tenant_slug}/deals",
            deals=result.items,
            next_cursor=result.next_cursor,
            q=q,
            filters=filters,
            status=status,
            pipeline_id=pipeline_id,
            pipelines=await pipelines.all(tenant),
        )

    @get("/deals/new")
    async def new_deal(
        self,
        principal: Principal,
        tenant: TenantContext,
        pipelines: PipelineService,
        companies: CompanyService,
    ) -> Template:
        """An empty deal form."""
        tenant.require(Scope.DEALS_WRITE)
        return page(
            "deals/form.html",
            principal,
            form={"currency": "EUR"},
            errors={},
            pipelines=await pipelines.all(tenant),
            companies=(await companies.find(tenant, limit=200)).items,
            custom_fields=await custom_fields_of(companies.db, tenant, "deal"),
        )

    @post("/deals")
    async def create_deal(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        deals: DealService,
        pipelines: PipelineService,
        companies: CompanyService,
        data: Form,
    ) -> Response[Any]:
        """Create from the form; errors come back inline."""
        fields = await custom_fields_of(deals.db, tenant, "deal")
        try:
            values = {k: v for k, v in _values(data, _DEAL_FIELDS).items() if v is not None}
            values.setdefault("title", "")
            values.setdefault("currency", "")
            values["custom"] = custom_form_values(data, fields)
            created = await deals.create(tenant, convert_form(DealCreate, values))
        except OrbitError as exc:
            return invalid(
                "deals/form.html",
                principal,
                exc,
                form=data,
                pipelines=await pipelines.all(tenant),
                companies=(await companies.find(tenant, limit=200)).items,
                custom_fields=fields,
            )
        return go(request, f"/t/{tenant.tenant_slug}/deals/{created.id}")

    @get("/deals/{deal_id:str}")
    async def deal_detail(
        self,
        principal: Principal,
        tenant: TenantContext,
        deals: DealService,
        pipelines: PipelineService,
        runtime: Runtime,
        deal_id: str,
    ) -> Template:
        """A deal with its stage history and timeline."""
        deal = await deals.get(tenant, parse_id(deal_id, "deal"))
        pipeline = await pipelines.get(tenant, deal.pipeline_id)
        names = {stage.id: stage.name for stage in pipeline.stages}
        company = None
        if deal.company_id:
            company = await CompanyService(deals.db).get(tenant, deal.company_id)
        return page(
            "deals/detail.html",
            principal,
            deal=deal,
            pipeline=pipeline,
            stage_names=names,
            company=company,
            history=await deals.history(tenant, deal.id),
            timeline=await ActivityService(deals.db).timeline(tenant, "deal", deal.id),
            audit=(await AuditService(deals.db).history(tenant, "deal", deal.id)).items,
            can_write=Scope.DEALS_WRITE in tenant.scopes,
            custom_fields=await custom_fields_of(deals.db, tenant, "deal"),
            **await record_plugins(runtime.plugins, tenant, "deal", deal.id),
        )

    @post("/deals/{deal_id:str}/move")
    async def move_deal(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        deals: DealService,
        deal_id: str,
        data: Form,
    ) -> Response[Any]:
        """Move from the board (drag and drop) or the detail page."""
        move = convert_form(
            DealMove,
            {
                "stage_id": str(data.get("stage_id", "")),
                "lost_reason": str(data.get("lost_reason", "")).strip() or None,
            },
        )
        deal = await deals.move(tenant, parse_id(deal_id, "deal"), move)
        if request.headers.get("hx-request") and data.get("from") == "board":
            return Response(None, status_code=204)
        return go(request, f"/t/{tenant.tenant_slug}/deals/{deal.id}")

    @post("/deals/{deal_id:str}/delete")
    async def delete_deal(
        self, request: AnyRequest, tenant: TenantContext, deals: DealService, deal_id: str
    ) -> Response[Any]:
        """Delete and return to the board."""
        await deals.delete(tenant, parse_id(deal_id, "deal"))
        return go(request, f"/t/{tenant.tenant_slug}/deals")

    # Timeline ------------------------------------------------------------------------

    @post("/activities")
    async def log_activity(
        self,
        request: AnyRequest,
        tenant: TenantContext,
        activities: ActivityService,
        data: Form,
    ) -> Response[Any]:
        """Log a note or call from a record's page, then show that page again."""
        values: dict[str, Any] = {
            key: str(data[key]).strip()
            for key in ("kind", "channel", "subject", "body")
            if str(data.get(key, "")).strip()
        }
        for link in ("contact_id", "company_id", "deal_id"):
            if data.get(link):
                values[link] = str(data[link])
        values.setdefault("kind", "note")
        await activities.log(tenant, convert_form(ActivityIn, values))
        back = str(data.get("back", ""))
        if not re.fullmatch(rf"/t/{re.escape(tenant.tenant_slug)}/[A-Za-z0-9/_-]*", back):
            back = f"/t/{tenant.tenant_slug}/contacts"
        return go(request, back)
