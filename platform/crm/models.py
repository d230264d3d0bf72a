"""CRM tables (schema in piccolo_migrations/, raw SQL where Piccolo cannot express it)."""

from piccolo.columns import JSONB, UUID, Array, Date, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.table import Table


class Contact(Table, tablename="contacts"):
    """A person the workspace does business with."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    first_name = Varchar(length=100)
    last_name = Varchar(length=100)
    email = Varchar(length=320, null=True, default=None)
    phone = Varchar(length=50, null=True, default=None)
    company_id = UUID(null=True, default=None)
    owner_id = UUID(null=True, default=None)
    tags = Array(base_column=Varchar(length=50))
    custom = JSONB()
    search_text = Text()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Company(Table, tablename="companies"):
    """An organisation the workspace sells to; contacts and deals link to it."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    name = Varchar(length=200)
    domain = Varchar(length=253, null=True, default=None)
    industry = Varchar(length=100, null=True, default=None)
    size = Varchar(length=20, null=True, default=None)
    address = Text(null=True, default=None)
    phone = Varchar(length=50, null=True, default=None)
    owner_id = UUID(null=True, default=None)
    tags = Array(base_column=Varchar(length=50))
    custom = JSONB()
    search_text = Text()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Pipeline(Table, tablename="pipelines"):
    """A sales process: ordered stages a deal moves through."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    name = Varchar(length=100)
    position = Integer()
    created_at = Timestamptz()


class PipelineStage(Table, tablename="pipeline_stages"):
    """One step of a pipeline with its win probability; ``kind`` marks won/lost stages."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    pipeline_id = UUID()
    name = Varchar(length=100)
    position = Integer()
    probability = Numeric(digits=(5, 2))
    kind = Varchar(length=10)


class Deal(Table, tablename="deals"):
    """A sales opportunity: an exact amount in one currency, in one stage of one pipeline."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    pipeline_id = UUID()
    stage_id = UUID()
    title = Varchar(length=200)
    amount = Numeric(digits=(18, 4))
    currency = Varchar(length=3)
    expected_close_date = Date(null=True, default=None)
    owner_id = UUID(null=True, default=None)
    company_id = UUID(null=True, default=None)
    status = Varchar(length=10)
    lost_reason = Varchar(length=500, null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    search_text = Text()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class DealStageHistory(Table, tablename="deal_stage_history"):
    """Every move of a deal between stages, for time-in-stage and conversion reports."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    deal_id = UUID()
    from_stage_id = UUID(null=True, default=None)
    to_stage_id = UUID()
    moved_at = Timestamptz()
    moved_by = UUID(null=True, default=None)


class Activity(Table, tablename="activities"):
    """One interaction on the timeline (note, call, meeting, email, stage change …)."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    kind = Varchar(length=20)
    channel = Varchar(length=20)
    subject = Varchar(length=300)
    body = Text()
    author_id = UUID(null=True, default=None)
    occurred_at = Timestamptz()
    contact_id = UUID(null=True, default=None)
    company_id = UUID(null=True, default=None)
    deal_id = UUID(null=True, default=None)
    data = JSONB()
    created_at = Timestamptz()


class Task(Table, tablename="tasks"):
    """Something to do by a time, for a member, maybe about a contact, company or deal."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    title = Varchar(length=300)
    notes = Text()
    due_at = Timestamptz()
    remind_at = Timestamptz(null=True, default=None)
    reminded_at = Timestamptz(null=True, default=None)
    assignee_id = UUID(null=True, default=None)
    priority = Varchar(length=10)
    recurrence = Varchar(length=10)
    done_at = Timestamptz(null=True, default=None)
    contact_id = UUID(null=True, default=None)
    company_id = UUID(null=True, default=None)
    deal_id = UUID(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Notification(Table, tablename="notifications"):
    """An in-app message for one member (the bell): reminders, mentions, plugin news."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    membership_id = UUID()
    kind = Varchar(length=40)
    title = Varchar(length=300)
    link = Varchar(length=500)
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)
