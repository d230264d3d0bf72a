"""``orbit demo-seed``: a demo workspace with contacts in Orbit's first markets' scripts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from orbit.platform.auth.service import AccountService
from orbit.platform.crm.activities import ActivityService
from orbit.platform.crm.deals import DealService, PipelineService
from orbit.platform.crm.schemas import (
    ActivityIn,
    ActivityKind,
    Channel,
    ContactCreate,
    ContactOut,
    DealCreate,
    DealMove,
    TaskIn,
)
from orbit.platform.crm.service import ContactService
from orbit.platform.crm.tasks import TaskService
from orbit.tenants.context import TenantContext
from orbit.tenants.roles import ROLE_SCOPES, Role

if TYPE_CHECKING:
    from orbit.platform.db.engine import Database

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "orbit-demo-password"  # noqa: S105 - documented demo login, local only

DEMO_CONTACTS = [
    ("Maria", "Papadopoulou", "maria@example.gr", "Aegean Foods", ["customer"]),
    ("Γιώργος", "Παπαδόπουλος", "giorgos@example.gr", "Ελαιόλαδο ΑΕ", ["lead"]),
    ("Анна", "Иванова", "anna@example.ru", "Северный Ветер", ["customer"]),
    ("Дмитрий", "Смирнов", "dmitry@example.ru", None, ["lead"]),
    ("伟", "王", "wang.wei@example.cn", "长城贸易", ["partner"]),
    ("秀英", "李", "li.xiuying@example.cn", None, []),
    ("Jose", "dela Cruz", "jose.delacruz@example.ph", "Manila Bay Traders", ["customer"]),
    ("Maria Clara", "Santos", "mc.santos@example.ph", None, ["lead"]),
    ("José", "Müller", "jose.mueller@example.de", "Müller & Söhne", ["partner"]),
    ("Amelia", "Okafor", "amelia@example.ng", "Lagos Logistics", []),
]


DEMO_DEALS = [
    ("Olive oil, 2027 harvest", "18500", "EUR", "Negotiation", 20),
    ("Thyme honey for Easter", "4200", "EUR", "Proposal", 45),
    ("Northern Wind: spring order", "950000", "RUB", "Qualified", 60),
    ("Dried figs, trial shipment", "1200", "EUR", "Won", -3),
    ("Great Wall Trading: distributor", "86000", "CNY", "Lead", 90),
    ("Manila Bay Traders: olives", "240000", "PHP", "Lost", -10),
]
DEMO_ACTIVITIES: list[tuple[ActivityKind, Channel, str]] = [
    ("meeting", "in_person", "Tasted the new harvest at the fair"),
    ("call", "phone", "Wants samples before Friday"),
    ("email", "email", "Sent the price list"),
    ("note", "web", "Filled in the contact form on the website"),
]
DEMO_TASKS = [
    ("Send samples to Maria", -20),
    ("Call Anna about the spring order", 2),
    ("Prepare the Easter proposal", 50),
]


async def seed_demo(db: Database) -> str | None:
    """Create the demo workspace once; returns its slug, or ``None`` when it exists."""
    accounts = AccountService(db)
    async with db.transaction():
        if await db.fetchval("SELECT 1 FROM users WHERE email_key = $1", DEMO_EMAIL):
            return None
        account, workspace = await accounts.sign_up(
            email=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            name="Demo Owner",
            workspace_name="Demo Company",
        )
        owner = await accounts.workspaces.active_membership(workspace.id, account.id)
        ctx = TenantContext(
            tenant_id=workspace.id,
            tenant_slug=workspace.slug,
            tenant_name=workspace.name,
            scopes=ROLE_SCOPES[Role.OWNER],
            user_id=account.id,
            membership_id=owner["id"] if owner else None,
            role=Role.OWNER,
        )
        contacts = ContactService(db)
        created = [
            await contacts.create(
                ctx,
                ContactCreate(
                    first_name=first,
                    last_name=last,
                    email=email,
                    company_name=company,
                    tags=tags,
                    owner_id=ctx.membership_id,
                ),
            )
            for first, last, email, company, tags in DEMO_CONTACTS
        ]
        await _seed_pipeline_and_timeline(db, ctx, created)
        return workspace.slug


async def _seed_pipeline_and_timeline(
    db: Database, ctx: TenantContext, contacts: list[ContactOut]
) -> None:
    """Deals across the Sales pipeline, a few logged interactions and tasks."""
    pipeline = (await PipelineService(db).all(ctx))[0]
    stages = {stage.name: stage.id for stage in pipeline.stages}
    deals = DealService(db)
    today = datetime.now(UTC).date()
    for (title, amount, currency, stage, days), contact in zip(DEMO_DEALS, contacts, strict=False):
        deal = await deals.create(
            ctx,
            DealCreate(
                title=title,
                amount=Decimal(amount),
                currency=currency,
                stage_id=stages["Lead"],
                expected_close_date=today + timedelta(days=days),
                owner_id=ctx.membership_id,
                company_id=contact.company_id,
                contact_ids=[contact.id],
            ),
        )
        if stage != "Lead":
            reason = "Chose a local supplier" if stage == "Lost" else None
            await deals.move(ctx, deal.id, DealMove(stage_id=stages[stage], lost_reason=reason))
    activities = ActivityService(db)
    for contact, (kind, channel, subject) in zip(contacts, DEMO_ACTIVITIES, strict=False):
        await activities.log(
            ctx,
            ActivityIn(kind=kind, channel=channel, subject=subject, contact_id=contact.id),
        )
    tasks = TaskService(db)
    now = datetime.now(UTC)
    for title, hours in DEMO_TASKS:
        await tasks.create(ctx, TaskIn(title=title, due_at=now + timedelta(hours=hours)))
