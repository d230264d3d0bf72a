"""``orbit demo-seed``: a demo workspace with contacts in Orbit's first markets' scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orbit.platform.auth.service import AccountService
from orbit.platform.crm.schemas import ContactCreate
from orbit.platform.crm.service import ContactService
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
        for first, last, email, company, tags in DEMO_CONTACTS:
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
        return workspace.slug
