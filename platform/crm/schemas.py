"""CRM input and output shapes. Unknown fields are refused by name."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

Name = Annotated[str, Meta(max_length=100)]
Tag = Annotated[str, Meta(min_length=1, max_length=50)]
Tags = Annotated[list[Tag], Meta(max_length=50)]
Phone = Annotated[str, Meta(max_length=50)]
CompanyName = Annotated[str, Meta(max_length=200)]
Email = Annotated[str, Meta(max_length=320)]


class ContactCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new contact: at least a first name, a last name or an email."""

    first_name: Name = ""
    last_name: Name = ""
    email: Email | None = None
    phone: Phone | None = None
    company_id: UUID | None = None
    company_name: CompanyName | None = None
    """Links the company with this name, creating it when the workspace has none."""
    owner_id: UUID | None = None
    tags: Tags = msgspec.field(default_factory=list)
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class ContactPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update: only the fields present change; ``null`` clears an optional one."""

    first_name: Name | UnsetType = UNSET
    last_name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    company_id: UUID | UnsetType | None = UNSET
    company_name: CompanyName | UnsetType | None = UNSET
    owner_id: UUID | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET
    custom: dict[str, Any] | UnsetType = UNSET


class ContactOut(msgspec.Struct, kw_only=True):
    """A contact as the API returns it."""

    id: UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    company_id: UUID | None
    company_name: str | None
    owner_id: UUID | None
    tags: list[str]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContactPage(msgspec.Struct, kw_only=True):
    """One page of contacts; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ContactOut]
    next_cursor: str | None


CompanySize = Literal["1-10", "11-50", "51-200", "201-1000", "1001+"]
Domain = Annotated[str, Meta(max_length=253)]


class CompanyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new company."""

    name: CompanyName
    domain: Domain | None = None
    industry: Annotated[str, Meta(max_length=100)] | None = None
    size: CompanySize | None = None
    address: Annotated[str, Meta(max_length=1000)] | None = None
    phone: Phone | None = None
    owner_id: UUID | None = None
    tags: Tags = msgspec.field(default_factory=list)
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class CompanyPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update of a company."""

    name: CompanyName | UnsetType = UNSET
    domain: Domain | UnsetType | None = UNSET
    industry: Annotated[str, Meta(max_length=100)] | UnsetType | None = UNSET
    size: CompanySize | UnsetType | None = UNSET
    address: Annotated[str, Meta(max_length=1000)] | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    owner_id: UUID | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET
    custom: dict[str, Any] | UnsetType = UNSET


class CompanyOut(msgspec.Struct, kw_only=True):
    """A company as the API returns it."""

    id: UUID
    name: str
    domain: str | None
    industry: str | None
    size: str | None
    address: str | None
    phone: str | None
    owner_id: UUID | None
    tags: list[str]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class CompanyPage(msgspec.Struct, kw_only=True):
    """One page of companies."""

    items: list[CompanyOut]
    next_cursor: str | None


Probability = Decimal  # 0–100, checked by the pipeline service (msgspec bounds no Decimal)
StageKind = Literal["open", "won", "lost"]
StageName = Annotated[str, Meta(min_length=1, max_length=100)]


class StageIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A stage to add: its name, win probability (0–100) and kind."""

    name: StageName
    probability: Probability
    kind: StageKind = "open"


class StagePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Rename a stage or change its probability."""

    name: StageName | UnsetType = UNSET
    probability: Probability | UnsetType = UNSET


class StageOut(msgspec.Struct, kw_only=True):
    """A pipeline stage."""

    id: UUID
    name: str
    position: int
    probability: Decimal
    kind: str


class PipelineIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new pipeline with its stages in order."""

    name: StageName
    stages: Annotated[list[StageIn], Meta(min_length=1, max_length=50)]


class PipelineOut(msgspec.Struct, kw_only=True):
    """A pipeline and its stages in order."""

    id: UUID
    name: str
    position: int
    stages: list[StageOut]


class StageOrder(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every stage id of the pipeline, in the new order."""

    stage_ids: Annotated[list[UUID], Meta(min_length=1, max_length=50)]


Money = Decimal  # ≥ 0 with at most 4 decimals, checked by the deal service
Currency = Annotated[str, Meta(min_length=3, max_length=3)]


class DealCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new deal; without pipeline/stage it starts in the first stage of the first pipeline."""

    title: Annotated[str, Meta(max_length=200)]
    amount: Money = Decimal(0)
    currency: Currency
    pipeline_id: UUID | None = None
    stage_id: UUID | None = None
    expected_close_date: date | None = None
    owner_id: UUID | None = None
    company_id: UUID | None = None
    contact_ids: Annotated[list[UUID], Meta(max_length=100)] = msgspec.field(default_factory=list)
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class DealPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update of a deal (stage changes go through ``/move``)."""

    title: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    amount: Money | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    expected_close_date: date | UnsetType | None = UNSET
    owner_id: UUID | UnsetType | None = UNSET
    company_id: UUID | UnsetType | None = UNSET
    contact_ids: Annotated[list[UUID], Meta(max_length=100)] | UnsetType = UNSET
    custom: dict[str, Any] | UnsetType = UNSET


class DealMove(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Move a deal to a stage of its pipeline; a lost stage needs a reason."""

    stage_id: UUID
    lost_reason: Annotated[str, Meta(max_length=500)] | None = None


class DealOut(msgspec.Struct, kw_only=True):
    """A deal as the API returns it; ``amount`` is an exact decimal string."""

    id: UUID
    title: str
    amount: Decimal
    currency: str
    pipeline_id: UUID
    stage_id: UUID
    stage_name: str
    probability: Decimal
    status: str
    lost_reason: str | None
    expected_close_date: date | None
    owner_id: UUID | None
    company_id: UUID | None
    contact_ids: list[UUID]
    custom: dict[str, Any]
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DealPage(msgspec.Struct, kw_only=True):
    """One page of deals."""

    items: list[DealOut]
    next_cursor: str | None


class StageMoveOut(msgspec.Struct, kw_only=True):
    """One move of a deal, with how long it had been in the stage it left."""

    from_stage_id: UUID | None
    to_stage_id: UUID
    moved_at: datetime
    moved_by: UUID | None
    seconds_in_previous_stage: int | None


class ForecastRow(msgspec.Struct, kw_only=True):
    """Open deals closing in one month, for one owner and currency."""

    month: date | None
    owner_id: UUID | None
    currency: str
    deals: int
    weighted: Decimal
    best_case: Decimal


ActivityKind = Literal["note", "call", "meeting", "email", "task"]
Channel = Literal["email", "phone", "web", "shop", "call_centre", "in_person", "other"]


class ActivityIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An interaction to log, linked to at least one contact, company or deal."""

    kind: ActivityKind
    channel: Channel = "other"
    subject: Annotated[str, Meta(max_length=300)] = ""
    body: Annotated[str, Meta(max_length=20000)] = ""
    occurred_at: datetime | None = None
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_id: UUID | None = None


class ActivityOut(msgspec.Struct, kw_only=True):
    """One entry of a timeline."""

    id: UUID
    kind: str
    channel: str
    subject: str
    body: str
    author_id: UUID | None
    occurred_at: datetime
    contact_id: UUID | None
    company_id: UUID | None
    deal_id: UUID | None
    data: dict[str, Any]


class Timeline(msgspec.Struct, kw_only=True):
    """One page of a timeline, newest first."""

    items: list[ActivityOut]
    next_cursor: str | None


Priority = Literal["low", "normal", "high"]
Recurrence = Literal["none", "daily", "weekly", "monthly"]


class TaskIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new task; the assignee defaults to whoever creates it."""

    title: Annotated[str, Meta(max_length=300)]
    due_at: datetime
    remind_at: datetime | None = None
    assignee_id: UUID | None = None
    priority: Priority = "normal"
    recurrence: Recurrence = "none"
    notes: Annotated[str, Meta(max_length=10000)] = ""
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_id: UUID | None = None


class TaskPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update of a task."""

    title: Annotated[str, Meta(max_length=300)] | UnsetType = UNSET
    due_at: datetime | UnsetType = UNSET
    remind_at: datetime | UnsetType | None = UNSET
    assignee_id: UUID | UnsetType | None = UNSET
    priority: Priority | UnsetType = UNSET
    recurrence: Recurrence | UnsetType = UNSET
    notes: Annotated[str, Meta(max_length=10000)] | UnsetType = UNSET


class TaskOut(msgspec.Struct, kw_only=True):
    """A task."""

    id: UUID
    title: str
    notes: str
    due_at: datetime
    remind_at: datetime | None
    assignee_id: UUID | None
    priority: str
    recurrence: str
    done_at: datetime | None
    contact_id: UUID | None
    company_id: UUID | None
    deal_id: UUID | None
    created_at: datetime


class NotificationOut(msgspec.Struct, kw_only=True):
    """An in-app notification."""

    id: UUID
    kind: str
    title: str
    link: str
    created_at: datetime
    read_at: datetime | None


class Inbox(msgspec.Struct, kw_only=True):
    """A member's newest notifications and how many are unread."""

    unread: int
    items: list[NotificationOut]


CustomObjectType = Literal["contact", "company", "deal"]
CustomFieldType = Literal[
    "text",
    "long_text",
    "number",
    "decimal",
    "date",
    "select",
    "multi_select",
    "checkbox",
    "url",
    "email",
]
CustomFieldKey = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
CustomFieldLabel = Annotated[str, Meta(min_length=1, max_length=100)]
CustomFieldOptions = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=100)]], Meta(max_length=100)
]


class CustomFieldCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new custom field; ``key`` (a-z, 0-9, _) names its value in a record's ``custom``."""

    object_type: CustomObjectType
    key: CustomFieldKey
    label: CustomFieldLabel
    type: CustomFieldType
    options: CustomFieldOptions = msgspec.field(default_factory=list)
    """The choices of a ``select`` or ``multi_select`` field (none for other types)."""
    required: bool = False
    position: Annotated[int, Meta(ge=0, le=1000)] | None = None
    """Where the field appears in forms; after the others when absent."""


class CustomFieldPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change a custom field's label, options, required flag or position (not key or type)."""

    label: CustomFieldLabel | UnsetType = UNSET
    options: CustomFieldOptions | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    position: Annotated[int, Meta(ge=0, le=1000)] | UnsetType = UNSET


class CustomFieldOut(msgspec.Struct, kw_only=True):
    """A custom field definition."""

    id: UUID
    object_type: str
    key: str
    label: str
    type: str
    options: list[str]
    required: bool
    position: int
    created_at: datetime


ViewName = Annotated[str, Meta(min_length=1, max_length=100)]
ViewSort = Annotated[str, Meta(max_length=120)]
ViewQuery = Annotated[str, Meta(max_length=200)]
ViewFilters = Annotated[list[dict[str, Any]], Meta(max_length=20)]
ViewColumns = Annotated[list[Annotated[str, Meta(max_length=60)]], Meta(max_length=30)]


class SavedViewIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A list's filters, sort and columns to keep under a name.

    ``filters`` is a list of ``{"field", "op", "value"}`` (see the list endpoints);
    ``shared`` makes it visible to the whole workspace (members with write access).
    """

    object_type: CustomObjectType
    name: ViewName
    shared: bool = False
    q: ViewQuery = ""
    filters: ViewFilters = msgspec.field(default_factory=list)
    sort: ViewSort = "-updated_at"
    columns: ViewColumns = msgspec.field(default_factory=list)


class SavedViewPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change some parts of a saved view (its object type stays)."""

    name: ViewName | UnsetType = UNSET
    shared: bool | UnsetType = UNSET
    q: ViewQuery | UnsetType = UNSET
    filters: ViewFilters | UnsetType = UNSET
    sort: ViewSort | UnsetType = UNSET
    columns: ViewColumns | UnsetType = UNSET


class SavedViewOut(msgspec.Struct, kw_only=True):
    """A saved view; ``editable``: whether the caller may change or delete it."""

    id: UUID
    object_type: str
    name: str
    owner_id: UUID | None
    shared: bool
    q: str
    filters: list[dict[str, Any]]
    sort: str
    columns: list[str]
    editable: bool
    created_at: datetime
    updated_at: datetime


class ListCount(msgspec.Struct, kw_only=True):
    """How many records a list (with its filters) has; ``exact`` false: an estimate."""

    count: int
    exact: bool


class ViewFieldOut(msgspec.Struct, kw_only=True):
    """A field lists filter and sort by: its kind decides the operators."""

    name: str
    label: str
    kind: str
    operators: list[str]
    sortable: bool
    options: list[str]


DuplicateReason = Literal["email", "phone", "name", "domain"]


class MergeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Merge ``merged_ids`` into ``survivor_id`` (at most 10 records in all).

    ``choices`` maps a field (``email``, ``custom.<key>`` …) to the record whose
    value survives; a field not named keeps the survivor's value, or when that is
    empty the first merged record's that has one. Tags are united.
    """

    survivor_id: UUID
    merged_ids: list[UUID]
    choices: dict[str, UUID] = msgspec.field(default_factory=dict)


class ContactMergeOut(msgspec.Struct, kw_only=True):
    """The surviving contact as it is after the merge, and the ids merged into it."""

    contact: ContactOut
    merged_ids: list[UUID]


class CompanyMergeOut(msgspec.Struct, kw_only=True):
    """The surviving company as it is after the merge, and the ids merged into it."""

    company: CompanyOut
    merged_ids: list[UUID]


class ContactDuplicates(msgspec.Struct, kw_only=True):
    """Contacts that are likely one person, and why (at most 10 per group)."""

    reason: DuplicateReason
    contacts: list[ContactOut]


class ContactDuplicatePage(msgspec.Struct, kw_only=True):
    """One page of duplicate groups; ``next_cursor`` continues.

    A page may hold fewer groups than asked while more of the workspace remains to
    be looked at (each request looks at a bounded part of it).
    """

    items: list[ContactDuplicates]
    next_cursor: str | None


class CompanyDuplicates(msgspec.Struct, kw_only=True):
    """Companies that are likely one organisation, and why (at most 10 per group)."""

    reason: DuplicateReason
    companies: list[CompanyOut]


class CompanyDuplicatePage(msgspec.Struct, kw_only=True):
    """One page of duplicate groups; ``next_cursor`` continues (see ContactDuplicatePage)."""

    items: list[CompanyDuplicates]
    next_cursor: str | None


class DuplicateOf(msgspec.Struct, kw_only=True):
    """A likely duplicate of one record: its id, name and why."""

    id: UUID
    label: str
    reason: DuplicateReason
