"""The CRM over JSON: contacts, companies, pipelines, deals and activities under ``/api/v1``."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from msgspec import Meta

from orbit.platform.crm.activities import ActivityService
from orbit.platform.crm.companies import CompanyService
from orbit.platform.crm.custom_fields import CustomFieldService, custom_filters
from orbit.platform.crm.deals import DealService, PipelineService
from orbit.platform.crm.listing import OPERATORS
from orbit.platform.crm.merge import COMPANIES, CONTACTS, MergeService
from orbit.platform.crm.portability import ContactPortability
from orbit.platform.crm.schemas import (
    ActivityIn,
    ActivityOut,
    CompanyCreate,
    CompanyDuplicatePage,
    CompanyMergeOut,
    CompanyOut,
    CompanyPage,
    CompanyPatch,
    ContactCreate,
    ContactDuplicatePage,
    ContactMergeOut,
    ContactOut,
    ContactPage,
    ContactPatch,
    CustomFieldCreate,
    CustomFieldOut,
    CustomFieldPatch,
    CustomObjectType,
    DealCreate,
    DealMove,
    DealOut,
    DealPage,
    DealPatch,
    DuplicateOf,
    ForecastRow,
    Inbox,
    ListCount,
    MergeIn,
    PipelineIn,
    PipelineOut,
    SavedViewIn,
    SavedViewOut,
    SavedViewPatch,
    StageIn,
    StageMoveOut,
    StageOrder,
    StagePatch,
    TaskIn,
    TaskOut,
    TaskPatch,
    Timeline,
    ViewFieldOut,
)
from orbit.platform.crm.service import DEFAULT_PAGE, MAX_PAGE, ContactService
from orbit.platform.crm.tasks import NotificationService, TaskService
from orbit.platform.crm.views import READ_SCOPES, ListSpec, SavedViewService
from orbit.platform.errors import InvalidInputError
from orbit.platform.ids import parse_id
from orbit.platform.runtime import Runtime
from orbit.tenants.context import TenantContext

ViewParam = Annotated[str | None, Parameter(description="A saved view's id to apply")]
FiltersParam = Annotated[
    str | None,
    Parameter(
        description='JSON list of filters: [{"field": "last_name", "op": "contains", '
        '"value": "pap"}]; ops: equals, contains, in, range, empty'
    ),
]
SortParam = Annotated[
    str | None, Parameter(description="A field to sort by, - for descending: -amount")
]
ReasonParam = Annotated[
    str | None, Parameter(description="Only groups of this reason (all reasons when absent)")
]
GroupLimit = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description="Groups per page")]
ExactParam = Annotated[
    bool, Parameter(description="Count exactly (otherwise large lists are estimated)")
]


async def list_spec(
    views: SavedViewService,
    tenant: TenantContext,
    object_type: str,
    view: str | None,
    filters: str | None,
    sort: str | None,
) -> ListSpec | None:
    """The saved view, filters and sort a list request names (``None``: none of them)."""
    if view is None and filters is None and sort is None:
        return None
    return await views.list_spec(
        tenant,
        object_type,
        view_id=parse_id(view, "view") if view else None,
        filters=filters,
        sort=sort,
    )


class ContactController(Controller):
    """Create, list, search, read, change and delete contacts."""

    path = "/api/v1/contacts"
    tags = ["contacts"]

    @get("/")
    async def list_contacts(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        contacts: ContactService,
        views: SavedViewService,
        q: Annotated[str | None, Parameter(description="Search names, email, company")] = None,
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        view: ViewParam = None,
        filters: FiltersParam = None,
        sort: SortParam = None,
    ) -> ContactPage:
        """Contacts, most recently updated first; ``q`` matches case- and accent-insensitively.

        ``view`` applies a saved view; ``filters`` (JSON) and ``sort`` add to it (see
        ``/api/v1/views``). ``custom.<key>=<value>`` filters by a custom field
        (equality; a multi-select contains the value).
        """
        custom = custom_filters(request.query_params.multi_items())
        spec = await list_spec(views, tenant, "contact", view, filters, sort)
        return await contacts.find(
            tenant, q=q, cursor=cursor, limit=limit, custom=custom, spec=spec
        )

    @get("/count")
    async def count_contacts(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        contacts: ContactService,
        views: SavedViewService,
        q: str | None = None,
        view: ViewParam = None,
        filters: FiltersParam = None,
        exact: ExactParam = False,
    ) -> ListCount:
        """How many contacts the list with these parameters has (estimated unless ``exact``)."""
        custom = custom_filters(request.query_params.multi_items())
        spec = await list_spec(views, tenant, "contact", view, filters, None)
        return await contacts.count(tenant, q=q, custom=custom, spec=spec, exact=exact)

    @post("/")
    async def create_contact(
        self, tenant: TenantContext, contacts: ContactService, data: ContactCreate
    ) -> ContactOut:
        """Create a contact."""
        return await contacts.create(tenant, data)

    @get("/duplicates")
    async def contact_duplicates(
        self,
        tenant: TenantContext,
        merges: MergeService,
        reason: ReasonParam = None,
        cursor: str | None = None,
        limit: GroupLimit = 20,
    ) -> ContactDuplicatePage:
        """Likely duplicate contacts in groups, with the reason.

        Same email (case-insensitively), same phone number (its digits), or a similar
        name at the same company (``reason``: email, phone, name).
        """
        return await merges.contact_duplicates(tenant, reason=reason, cursor=cursor, limit=limit)

    @post("/merge", status_code=HTTP_200_OK)
    async def merge_contacts(
        self, tenant: TenantContext, merges: MergeService, data: MergeIn
    ) -> ContactMergeOut:
        """Merge contacts into a survivor (at most 10 in all).

        Timeline, deals, tasks and tags move to it, ``choices`` picks each field's
        surviving value (``custom.<key>`` too), the merged contacts are deleted; one
        audit entry and a ``contact.merged`` event.
        """
        return await merges.merge_contacts(tenant, data)

    @get("/{contact_id:str}/duplicates")
    async def duplicates_of_contact(
        self, tenant: TenantContext, merges: MergeService, contact_id: str
    ) -> list[DuplicateOf]:
        """The likely duplicates of one contact, with the reason."""
        return await merges.duplicates_of(tenant, CONTACTS, parse_id(contact_id, "contact"))

    @get("/{contact_id:str}")
    async def get_contact(
        self, tenant: TenantContext, contacts: ContactService, contact_id: str
    ) -> ContactOut:
        """One contact."""
        return await contacts.get(tenant, parse_id(contact_id, "contact"))

    @patch("/{contact_id:str}")
    async def update_contact(
        self, tenant: TenantContext, contacts: ContactService, contact_id: str, data: ContactPatch
    ) -> ContactOut:
        """Change some fields of a contact."""
        return await contacts.update(tenant, parse_id(contact_id, "contact"), data)

    @delete("/{contact_id:str}")
    async def delete_contact(
        self, tenant: TenantContext, contacts: ContactService, contact_id: str
    ) -> None:
        """Delete a contact."""
        await contacts.delete(tenant, parse_id(contact_id, "contact"))

    @get("/{contact_id:str}/export")
    async def export_contact(
        self, tenant: TenantContext, runtime: Runtime, contact_id: str
    ) -> Response[dict[str, Any]]:
        """Everything Orbit and its enabled apps keep about one person (subject access)."""
        parsed = parse_id(contact_id, "contact")
        document = await ContactPortability(runtime.db, runtime.plugins).export(tenant, parsed)
        return Response(
            document,
            headers={"Content-Disposition": f'attachment; filename="contact-{parsed}.json"'},
        )

    @post("/{contact_id:str}/erase", status_code=HTTP_200_OK)
    async def erase_contact(
        self, tenant: TenantContext, runtime: Runtime, contact_id: str
    ) -> dict[str, int]:
        """Forget a person: the contact, timeline, tasks, personal data in events and audit."""
        return await ContactPortability(runtime.db, runtime.plugins).erase(
            tenant, parse_id(contact_id, "contact")
        )

    @get("/{contact_id:str}/timeline")
    async def contact_timeline(
        self,
        tenant: TenantContext,
        activities: ActivityService,
        contact_id: str,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Timeline:
        """The contact's timeline, with its deals' activities."""
        record_id = parse_id(contact_id, "contact")
        return await activities.timeline(tenant, "contact", record_id, cursor=cursor, limit=limit)


class CompanyController(Controller):
    """Companies."""

    path = "/api/v1/companies"
    tags = ["companies"]

    @get("/")
    async def list_companies(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        companies: CompanyService,
        views: SavedViewService,
        q: Annotated[str | None, Parameter(description="Search name and domain")] = None,
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of a previous page")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        view: ViewParam = None,
        filters: FiltersParam = None,
        sort: SortParam = None,
    ) -> CompanyPage:
        """Companies, most recently updated first.

        ``view``, ``filters`` and ``sort`` as for contacts. ``custom.<key>=<value>``
        filters by a custom field (equality; a multi-select contains the value).
        """
        custom = custom_filters(request.query_params.multi_items())
        spec = await list_spec(views, tenant, "company", view, filters, sort)
        return await companies.find(
            tenant, q=q, cursor=cursor, limit=limit, custom=custom, spec=spec
        )

    @get("/count")
    async def count_companies(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        companies: CompanyService,
        views: SavedViewService,
        q: str | None = None,
        view: ViewParam = None,
        filters: FiltersParam = None,
        exact: ExactParam = False,
    ) -> ListCount:
        """How many companies the list with these parameters has (estimated unless ``exact``)."""
        custom = custom_filters(request.query_params.multi_items())
        spec = await list_spec(views, tenant, "company", view, filters, None)
        return await companies.count(tenant, q=q, custom=custom, spec=spec, exact=exact)

    @post("/")
    async def create_company(
        self, tenant: TenantContext, companies: CompanyService, data: CompanyCreate
    ) -> CompanyOut:
        """Create a company (domain unique per workspace)."""
        return await companies.create(tenant, data)

    @get("/duplicates")
    async def company_duplicates(
        self,
        tenant: TenantContext,
        merges: MergeService,
        reason: ReasonParam = None,
        cursor: str | None = None,
        limit: GroupLimit = 20,
    ) -> CompanyDuplicatePage:
        """Likely duplicate companies in groups, with the reason.

        The same domain (its registered part, so ``eu.acme.com`` and ``acme.com``) or
        a similar name (``reason``: domain, name).
        """
        return await merges.company_duplicates(tenant, reason=reason, cursor=cursor, limit=limit)

    @post("/merge", status_code=HTTP_200_OK)
    async def merge_companies(
        self, tenant: TenantContext, merges: MergeService, data: MergeIn
    ) -> CompanyMergeOut:
        """Merge companies into a survivor (at most 10 in all).

        Contacts, deals, timeline and tasks move to it, tags are united, ``choices``
        picks each field's surviving value; one audit entry and a ``company.merged`` event.
        """
        return await merges.merge_companies(tenant, data)

    @get("/{company_id:str}/duplicates")
    async def duplicates_of_company(
        self, tenant: TenantContext, merges: MergeService, company_id: str
    ) -> list[DuplicateOf]:
        """The likely duplicates of one company, with the reason."""
        return await merges.duplicates_of(tenant, COMPANIES, parse_id(company_id, "company"))

    @get("/{company_id:str}")
    async def get_company(
        self, tenant: TenantContext, companies: CompanyService, company_id: str
    ) -> CompanyOut:
        """One company."""
        return await companies.get(tenant, parse_id(company_id, "company"))

    @patch("/{company_id:str}")
    async def update_company(
        self, tenant: TenantContext, companies: CompanyService, company_id: str, data: CompanyPatch
    ) -> CompanyOut:
        """Change some fields of a company."""
        return await companies.update(tenant, parse_id(company_id, "company"), data)

    @delete("/{company_id:str}")
    async def delete_company(
        self, tenant: TenantContext, companies: CompanyService, company_id: str
    ) -> None:
        """Delete a company; its contacts and deals stay, unlinked."""
        await companies.delete(tenant, parse_id(company_id, "company"))

    @get("/{company_id:str}/timeline")
    async def company_timeline(
        self,
        tenant: TenantContext,
        activities: ActivityService,
        company_id: str,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Timeline:
        """The company's timeline, with its contacts' and deals' activities."""
        record_id = parse_id(company_id, "company")
        return await activities.timeline(tenant, "company", record_id, cursor=cursor, limit=limit)


class PipelineController(Controller):
    """Pipelines and their stages (changes: owners and admins)."""

    path = "/api/v1/pipelines"
    tags = ["pipelines"]

    @get("/")
    async def list_pipelines(
        self, tenant: TenantContext, pipelines: PipelineService
    ) -> list[PipelineOut]:
        """Pipelines with their stages, in order."""
        return await pipelines.all(tenant)

    @post("/")
    async def create_pipeline(
        self, tenant: TenantContext, pipelines: PipelineService, data: PipelineIn
    ) -> PipelineOut:
        """Create a pipeline with its stages."""
        return await pipelines.create(tenant, data)

    @get("/{pipeline_id:str}")
    async def get_pipeline(
        self, tenant: TenantContext, pipelines: PipelineService, pipeline_id: str
    ) -> PipelineOut:
        """One pipeline."""
        return await pipelines.get(tenant, parse_id(pipeline_id, "pipeline"))

    @patch("/{pipeline_id:str}")
    async def rename_pipeline(
        self, tenant: TenantContext, pipelines: PipelineService, pipeline_id: str, data: Rename
    ) -> PipelineOut:
        """Rename a pipeline."""
        return await pipelines.rename(tenant, parse_id(pipeline_id, "pipeline"), data.name)

    @post("/{pipeline_id:str}/stages")
    async def add_stage(
        self, tenant: TenantContext, pipelines: PipelineService, pipeline_id: str, data: StageIn
    ) -> PipelineOut:
        """Append a stage."""
        return await pipelines.add_stage(tenant, parse_id(pipeline_id, "pipeline"), data)

    @put("/{pipeline_id:str}/stages/order")
    async def reorder_stages(
        self, tenant: TenantContext, pipelines: PipelineService, pipeline_id: str, data: StageOrder
    ) -> PipelineOut:
        """Reorder the stages (every stage id once)."""
        return await pipelines.reorder(tenant, parse_id(pipeline_id, "pipeline"), data.stage_ids)

    @patch("/stages/{stage_id:str}")
    async def update_stage(
        self, tenant: TenantContext, pipelines: PipelineService, stage_id: str, data: StagePatch
    ) -> PipelineOut:
        """Rename a stage or change its win probability."""
        return await pipelines.update_stage(tenant, parse_id(stage_id, "stage"), data)

    @delete("/stages/{stage_id:str}", status_code=HTTP_200_OK)
    async def remove_stage(
        self,
        tenant: TenantContext,
        pipelines: PipelineService,
        stage_id: str,
        move_deals_to: Annotated[
            str | None, Parameter(description="Stage that receives this stage's deals")
        ] = None,
    ) -> PipelineOut:
        """Remove a stage; a stage with deals needs ``move_deals_to``."""
        target = parse_stage_target(move_deals_to)
        return await pipelines.remove_stage(tenant, parse_id(stage_id, "stage"), target)


class DealController(Controller):
    """Deals."""

    path = "/api/v1/deals"
    tags = ["deals"]

    @get("/")
    async def list_deals(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        deals: DealService,
        views: SavedViewService,
        pipeline_id: UUID | None = None,
        stage_id: UUID | None = None,
        status: Literal["open", "won", "lost"] | None = None,
        owner_id: UUID | None = None,
        company_id: UUID | None = None,
        contact_id: UUID | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        view: ViewParam = None,
        filters: FiltersParam = None,
        sort: SortParam = None,
    ) -> DealPage:
        """Deals, most recently updated first, filtered.

        ``view``, ``filters`` and ``sort`` as for contacts. ``custom.<key>=<value>``
        filters by a custom field (equality; a multi-select contains the value).
        """
        return await deals.find(
            tenant,
            spec=await list_spec(views, tenant, "deal", view, filters, sort),
            custom=custom_filters(request.query_params.multi_items()),
            pipeline_id=pipeline_id,
            stage_id=stage_id,
            status=status,
            owner_id=owner_id,
            company_id=company_id,
            contact_id=contact_id,
            q=q,
            cursor=cursor,
            limit=limit,
        )

    @get("/count")
    async def count_deals(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        deals: DealService,
        views: SavedViewService,
        q: str | None = None,
        view: ViewParam = None,
        filters: FiltersParam = None,
        status: Literal["open", "won", "lost"] | None = None,
        pipeline_id: UUID | None = None,
        exact: ExactParam = False,
    ) -> ListCount:
        """How many deals the list with these parameters has (estimated unless ``exact``)."""
        custom = custom_filters(request.query_params.multi_items())
        spec = await list_spec(views, tenant, "deal", view, filters, None)
        return await deals.count(
            tenant,
            q=q,
            custom=custom,
            spec=spec,
            status=status,
            pipeline_id=pipeline_id,
            exact=exact,
        )

    @get("/forecast")
    async def forecast(
        self, tenant: TenantContext, deals: DealService, pipeline_id: UUID | None = None
    ) -> list[ForecastRow]:
        """Open deals by close month, owner and currency: weighted and best-case totals."""
        return await deals.forecast(tenant, pipeline_id)

    @post("/")
    async def create_deal(
        self, tenant: TenantContext, deals: DealService, data: DealCreate
    ) -> DealOut:
        """Create a deal."""
        return await deals.create(tenant, data)

    @get("/{deal_id:str}")
    async def get_deal(self, tenant: TenantContext, deals: DealService, deal_id: str) -> DealOut:
        """One deal."""
        return await deals.get(tenant, parse_id(deal_id, "deal"))

    @patch("/{deal_id:str}")
    async def update_deal(
        self, tenant: TenantContext, deals: DealService, deal_id: str, data: DealPatch
    ) -> DealOut:
        """Change some fields of a deal."""
        return await deals.update(tenant, parse_id(deal_id, "deal"), data)

    @delete("/{deal_id:str}")
    async def delete_deal(self, tenant: TenantContext, deals: DealService, deal_id: str) -> None:
        """Delete a deal."""
        await deals.delete(tenant, parse_id(deal_id, "deal"))

    @post("/{deal_id:str}/move", status_code=HTTP_200_OK)
    async def move_deal(
        self, tenant: TenantContext, deals: DealService, deal_id: str, data: DealMove
    ) -> DealOut:
        """Move a deal to another stage of its pipeline (won/lost stages close it)."""
        return await deals.move(tenant, parse_id(deal_id, "deal"), data)

    @get("/{deal_id:str}/history")
    async def deal_history(
        self, tenant: TenantContext, deals: DealService, deal_id: str
    ) -> list[StageMoveOut]:
        """Every stage move, with the time spent in the stage left."""
        return await deals.history(tenant, parse_id(deal_id, "deal"))

    @get("/{deal_id:str}/timeline")
    async def deal_timeline(
        self,
        tenant: TenantContext,
        activities: ActivityService,
        deal_id: str,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Timeline:
        """The deal's timeline."""
        record_id = parse_id(deal_id, "deal")
        return await activities.timeline(tenant, "deal", record_id, cursor=cursor, limit=limit)


class ActivityController(Controller):
    """Logging interactions from the app, web forms, shops and phone systems."""

    path = "/api/v1/activities"
    tags = ["activities"]

    @post("/")
    async def log_activity(
        self, tenant: TenantContext, activities: ActivityService, data: ActivityIn
    ) -> ActivityOut:
        """Log a note, call, meeting, email or task on a contact, company or deal."""
        return await activities.log(tenant, data)


class Rename(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new name."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]


def parse_stage_target(value: str | None) -> UUID | None:
    """``move_deals_to`` as an id; a 400 naming it when malformed."""
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        reason = f"{value!r} is not a stage id"
        raise InvalidInputError(
            f"move_deals_to: {reason}", fields={"move_deals_to": reason}
        ) from None


class TaskController(Controller):
    """Tasks: the caller's, by default."""

    path = "/api/v1/tasks"
    tags = ["tasks"]

    @get("/")
    async def my_tasks(
        self, tenant: TenantContext, tasks: TaskService, done: bool = False
    ) -> list[TaskOut]:
        """The caller's open tasks, soonest first (``done=true``: finished ones)."""
        return await tasks.mine(tenant, done=done)

    @post("/")
    async def create_task(self, tenant: TenantContext, tasks: TaskService, data: TaskIn) -> TaskOut:
        """Create a task with an optional reminder and recurrence."""
        return await tasks.create(tenant, data)

    @get("/{task_id:str}")
    async def get_task(self, tenant: TenantContext, tasks: TaskService, task_id: str) -> TaskOut:
        """One task."""
        return await tasks.get(tenant, parse_id(task_id, "task"))

    @patch("/{task_id:str}")
    async def update_task(
        self, tenant: TenantContext, tasks: TaskService, task_id: str, data: TaskPatch
    ) -> TaskOut:
        """Change some fields of a task."""
        return await tasks.update(tenant, parse_id(task_id, "task"), data)

    @post("/{task_id:str}/complete", status_code=HTTP_200_OK)
    async def complete_task(
        self, tenant: TenantContext, tasks: TaskService, task_id: str
    ) -> TaskOut:
        """Mark done; a recurring task comes back at its next occurrence."""
        return await tasks.complete(tenant, parse_id(task_id, "task"))

    @delete("/{task_id:str}")
    async def delete_task(self, tenant: TenantContext, tasks: TaskService, task_id: str) -> None:
        """Delete a task."""
        await tasks.delete(tenant, parse_id(task_id, "task"))


class NotificationController(Controller):
    """The caller's in-app notifications (the bell)."""

    path = "/api/v1/notifications"
    tags = ["notifications"]

    @get("/")
    async def inbox(self, tenant: TenantContext, notifications: NotificationService) -> Inbox:
        """Newest notifications and the unread count."""
        return await notifications.inbox(tenant)

    @post("/{notification_id:str}/read", status_code=HTTP_204_NO_CONTENT)
    async def mark_read(
        self, tenant: TenantContext, notifications: NotificationService, notification_id: str
    ) -> None:
        """Mark a notification read."""
        await notifications.mark_read(tenant, parse_id(notification_id, "notification"))


class CustomFieldController(Controller):
    """Custom field definitions (changes: owners and admins, ``custom_fields:write``)."""

    path = "/api/v1/custom-fields"
    tags = ["custom fields"]

    @get("/")
    async def list_custom_fields(
        self,
        tenant: TenantContext,
        custom_fields: CustomFieldService,
        object_type: Annotated[
            CustomObjectType | None, Parameter(description="contact, company or deal")
        ] = None,
    ) -> list[CustomFieldOut]:
        """Definitions in form order, of one object type or all you may read."""
        return await custom_fields.find(tenant, object_type)

    @post("/")
    async def create_custom_field(
        self, tenant: TenantContext, custom_fields: CustomFieldService, data: CustomFieldCreate
    ) -> CustomFieldOut:
        """Define a custom field for contacts, companies or deals."""
        return await custom_fields.create(tenant, data)

    @get("/{field_id:str}")
    async def get_custom_field(
        self, tenant: TenantContext, custom_fields: CustomFieldService, field_id: str
    ) -> CustomFieldOut:
        """One definition."""
        return await custom_fields.get(tenant, parse_id(field_id, "custom field"))

    @patch("/{field_id:str}")
    async def update_custom_field(
        self,
        tenant: TenantContext,
        custom_fields: CustomFieldService,
        field_id: str,
        data: CustomFieldPatch,
    ) -> CustomFieldOut:
        """Change the label, options, required flag or position."""
        return await custom_fields.update(tenant, parse_id(field_id, "custom field"), data)

    @delete("/{field_id:str}")
    async def delete_custom_field(
        self, tenant: TenantContext, custom_fields: CustomFieldService, field_id: str
    ) -> None:
        """Remove a definition; records keep their values as free-form data."""
        await custom_fields.delete(tenant, parse_id(field_id, "custom field"))


class SavedViewController(Controller):
    """Saved views of the contact, company and deal lists: private or shared."""

    path = "/api/v1/views"
    tags = ["views"]

    @get("/")
    async def list_views(
        self,
        tenant: TenantContext,
        views: SavedViewService,
        object_type: Annotated[
            CustomObjectType | None, Parameter(description="contact, company or deal")
        ] = None,
    ) -> list[SavedViewOut]:
        """Your views and the shared ones."""
        return await views.find(tenant, object_type)

    @post("/")
    async def create_view(
        self, tenant: TenantContext, views: SavedViewService, data: SavedViewIn
    ) -> SavedViewOut:
        """Save a view; filters, sort and columns are checked against the fields."""
        return await views.create(tenant, data)

    @get("/fields")
    async def view_fields(
        self,
        tenant: TenantContext,
        views: SavedViewService,
        object_type: Annotated[CustomObjectType, Parameter(description="contact, company, deal")],
    ) -> list[ViewFieldOut]:
        """The fields a list can filter and sort by, with their operators."""
        tenant.require(READ_SCOPES[object_type])
        return [
            ViewFieldOut(
                name=spec.name,
                label=spec.label,
                kind=spec.kind,
                operators=list(OPERATORS[spec.kind]),
                sortable=spec.sortable,
                options=list(spec.options),
            )
            for spec in (await views.fields(tenant, object_type)).values()
        ]

    @get("/{view_id:str}")
    async def get_view(
        self, tenant: TenantContext, views: SavedViewService, view_id: str
    ) -> SavedViewOut:
        """One view."""
        return await views.get(tenant, parse_id(view_id, "view"))

    @patch("/{view_id:str}")
    async def update_view(
        self, tenant: TenantContext, views: SavedViewService, view_id: str, data: SavedViewPatch
    ) -> SavedViewOut:
        """Change a view (yours, or a shared one as an owner or admin)."""
        return await views.update(tenant, parse_id(view_id, "view"), data)

    @delete("/{view_id:str}")
    async def delete_view(
        self, tenant: TenantContext, views: SavedViewService, view_id: str
    ) -> None:
        """Delete a view (yours, or a shared one as an owner or admin)."""
        await views.delete(tenant, parse_id(view_id, "view"))
