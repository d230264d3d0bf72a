"""Workspaces: creation with an owner, look-ups, members and invitations."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from orbit.billing.seats import enqueue_seat_sync
from orbit.platform import validation
from orbit.platform.audit.log import record
from orbit.platform.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from orbit.platform.ids import new_id
from orbit.tenants.context import TenantContext
from orbit.tenants.models import Invitation, Membership, Tenant
from orbit.tenants.quotas import Quotas
from orbit.tenants.roles import INVITABLE_ROLES, Role, Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database

INVITATION_TTL = timedelta(days=7)
_SLUG_MAX = 48


def slug_base(name: str) -> str:
    """A URL-safe slug stem from a workspace name (ASCII letters, digits, dashes)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:_SLUG_MAX].strip("-")
    return slug or "workspace"


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token (invitation or API key secret)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Workspace:
    """A tenant as the rest of the code sees it."""

    id: UUID
    slug: str
    name: str
    plan: str


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    """An invitation found by its token, before acceptance."""

    tenant_id: UUID
    id: UUID
    email: str
    role: Role
    workspace: Workspace


def _workspace(row: dict[str, Any]) -> Workspace:
    return Workspace(id=row["id"], slug=row["slug"], name=row["name"], plan=row["plan"])


class WorkspaceService:
    """Operations on workspaces; every method runs inside the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, owner_user_id: UUID) -> Workspace:
        """Create a workspace on the free plan with ``owner_user_id`` as its owner.

        Scopes the current transaction to the new workspace.
        """
        workspace = await self.create_empty(name)
        tenant_id, now = workspace.id, datetime.now(UTC)
        await Membership.insert(
            Membership(
                tenant_id=tenant_id,
                id=new_id(),
                user_id=owner_user_id,
                role=Role.OWNER.value,
                status="active",
                created_at=now,
            )
        )
        return workspace

    async def create_empty(self, name: str) -> Workspace:
        """A new workspace with no members yet (sign-up adds the owner, a restore its members).

        Picks a free slug from the name and scopes the current transaction to it.
        """
        name = validation.text(name, "workspace_name", max_length=200, required=True)
        base = slug_base(name)
        taken = {
            row["slug"]
            for row in await self.db.fetch(
                "SELECT slug FROM tenants WHERE slug = $1 OR slug LIKE $2", base, base + "-%"
            )
        }
        tenant_id = new_id()
        n = 1
        while True:
            slug = base if n == 1 else f"{base}-{n}"
            n += 1
            if slug in taken:
                continue
            # Two sign-ups may race for the same slug: the loser moves to the next one.
            inserted = await self.db.fetchval(
                """
                INSERT INTO tenants (id, slug, name, plan, created_at)
                VALUES ($1, $2, $3, 'free', $4) ON CONFLICT (slug) DO NOTHING RETURNING id
                """,
                tenant_id,
                slug,
                name,
                datetime.now(UTC),
            )
            if inserted is not None:
                break
        await self.db.set_tenant(tenant_id)
        return Workspace(id=tenant_id, slug=slug, name=name, plan="free")

    async def by_slug(self, slug: str) -> Workspace | None:
        """The workspace with this slug."""
        row = await Tenant.select().where(Tenant.slug == slug).first()
        return _workspace(row) if row else None

    async def active_membership(self, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
        """The user's active membership in this (already scoped) workspace."""
        return (
            await Membership.select()
            .where(
                (Membership.tenant_id == tenant_id)
                & (Membership.user_id == user_id)
                & (Membership.status == "active")
            )
            .first()
        )

    async def user_workspaces(self, user_id: UUID) -> list[tuple[str, str]]:
        """(slug, name) of every workspace where the user is an active member."""
        rows = await self.db.fetch("SELECT slug, name FROM orbit_user_workspaces($1)", user_id)
        return [(row["slug"], row["name"]) for row in rows]

    async def members(self, ctx: TenantContext) -> list[dict[str, Any]]:
        """Members of the workspace with their email and role, oldest first."""
        ctx.require(Scope.MEMBERS_READ)
        rows = await self.db.fetch(
            """
            SELECT m.id, m.role, m.status, m.created_at, u.email, u.name
            FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.tenant_id = $1 ORDER BY m.created_at, m.id
            """,
            ctx.tenant_id,
        )
        return [dict(row) for row in rows]

    async def invite(self, ctx: TenantContext, email: str, role: str) -> tuple[dict[str, Any], str]:
        """Invite ``email`` as ``role``; returns the invitation and its one-time token."""
        ctx.require(Scope.MEMBERS_WRITE)
        address = validation.email_address(email)
        if role not in {r.value for r in INVITABLE_ROLES}:
            allowed = ", ".join(r.value for r in INVITABLE_ROLES)
            raise InvalidInputError(
                f"role must be one of {allowed}", fields={"role": f"must be one of {allowed}"}
            )
        already = await self.db.fetchval(
            """
            SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.tenant_id = $1 AND u.email_key = $2 AND m.status = 'active'
            """,
            ctx.tenant_id,
            validation.email_key(address),
        )
        if already:
            raise ConflictError(
                f"{address} is already a member of this workspace",
                fields={"email": "is already a member"},
            )
        await self._check_seat(ctx.tenant_id, count_invitations=True)
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        invitation = Invitation(
            tenant_id=ctx.tenant_id,
            id=new_id(),
            email=address,
            role=role,
            token_hash=token_hash(token),
            invited_by=ctx.membership_id,
            created_at=now,
            expires_at=now + INVITATION_TTL,
        )
        await Invitation.insert(invitation)
        after = {"email": address, "role": role}
        await record(
            self.db, ctx, "create", "invitation", invitation.id, label=address, after=after
        )
        return invitation.to_dict(), token

    async def change_role(
        self, ctx: TenantContext, membership_id: UUID, role: str
    ) -> dict[str, Any]:
        """Make a member an admin, a member or a viewer; recorded in the audit log.

        The owner's role stays (ownership moves by its own, later, flow), and nobody
        changes their own role (an admin cannot lock the workspace out by accident).
        """
        ctx.require(Scope.MEMBERS_WRITE)
        if role not in {r.value for r in INVITABLE_ROLES}:
            allowed = ", ".join(r.value for r in INVITABLE_ROLES)
            raise InvalidInputError(
                f"role must be one of {allowed}", fields={"role": f"must be one of {allowed}"}
            )
        current = await self.db.fetchrow(
            """
            SELECT m.role, u.email FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.tenant_id = $1 AND m.id = $2 FOR UPDATE OF m
            """,
            ctx.tenant_id,
            membership_id,
        )
        if current is None:
            raise NotFoundError(f"member {membership_id} not found in this workspace")
        if current["role"] == Role.OWNER.value:
            raise ConflictError(
                "the owner's role cannot be changed", fields={"role": "the owner stays owner"}
            )
        if membership_id == ctx.membership_id:
            raise ConflictError(
                "you cannot change your own role; ask another admin",
                fields={"role": "is your own"},
            )
        await self.db.execute(
            "UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            membership_id,
            role,
        )
        await record(
            self.db,
            ctx,
            "update",
            "member",
            membership_id,
            label=current["email"],
            before={"role": current["role"]},
            after={"role": role},
        )
        return {"id": membership_id, "email": current["email"], "role": role}

    async def set_member_status(
        self, ctx: TenantContext, membership_id: UUID, *, active: bool
    ) -> dict[str, Any]:
        """Deactivate a member (they lose access, their records stay) or activate them again.

        A seat is an active member: activating needs a free seat on the plan, and either
        change queues a seat sync to Stripe in this transaction. Nobody deactivates the
        owner or themselves.
        """
        ctx.require(Scope.MEMBERS_WRITE)
        current = await self.db.fetchrow(
            """
            SELECT m.role, m.status, u.email FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.tenant_id = $1 AND m.id = $2 FOR UPDATE OF m
            """,
            ctx.tenant_id,
            membership_id,
        )
        if current is None:
            raise NotFoundError(f"member {membership_id} not found in this workspace")
        status = "active" if active else "deactivated"
        if current["status"] == status:
            return {"id": membership_id, "email": current["email"], "status": status}
        if not active and current["role"] == Role.OWNER.value:
            raise ConflictError(
                "the owner cannot be deactivated", fields={"status": "the owner stays active"}
            )
        if membership_id == ctx.membership_id:
            raise ConflictError(
                "you cannot change your own status; ask another admin",
                fields={"status": "is your own"},
            )
        if active:
            await self._check_seat(ctx.tenant_id, count_invitations=False)
        await self.db.execute(
            "UPDATE memberships SET status = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            membership_id,
            status,
        )
        await enqueue_seat_sync(self.db, ctx.tenant_id, f"member {status}")
        await record(
            self.db,
            ctx,
            "update",
            "member",
            membership_id,
            label=current["email"],
            before={"status": current["status"]},
            after={"status": status},
        )
        return {"id": membership_id, "email": current["email"], "status": status}

    async def _check_seat(self, tenant_id: UUID, *, count_invitations: bool) -> None:
        """A 402 with an upgrade prompt when the plan's seats are all used (or promised)."""
        await Quotas(self.db).check_seats(tenant_id, count_invitations=count_invitations)

    async def invitations(self, ctx: TenantContext) -> list[dict[str, Any]]:
        """Open invitations (not accepted, revoked or expired), newest first; admins only."""
        ctx.require(Scope.MEMBERS_WRITE)
        return await (
            Invitation.select(
                Invitation.id,
                Invitation.email,
                Invitation.role,
                Invitation.created_at,
                Invitation.expires_at,
            )
            .where(
                (Invitation.tenant_id == ctx.tenant_id)
                & Invitation.accepted_at.is_null()
                & Invitation.revoked_at.is_null()
                & (Invitation.expires_at > datetime.now(UTC))
            )
            .order_by(Invitation.created_at, ascending=False)
        )

    async def revoke_invitation(self, ctx: TenantContext, invitation_id: UUID) -> None:
        """Revoke an open invitation so its link stops working."""
        ctx.require(Scope.MEMBERS_WRITE)
        updated = await self.db.fetchrow(
            """
            UPDATE invitations SET revoked_at = now()
            WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
            RETURNING email, role
            """,
            ctx.tenant_id,
            invitation_id,
        )
        if updated is None:
            raise NotFoundError(f"open invitation {invitation_id} not found in this workspace")
        await record(
            self.db,
            ctx,
            "delete",
            "invitation",
            invitation_id,
            label=updated["email"],
            before={"email": updated["email"], "role": updated["role"]},
        )

    async def pending_invitation(self, token: str) -> PendingInvitation:
        """The open invitation behind ``token`` (a 404 when unknown, used, revoked or expired)."""
        row = await self.db.fetchrow(
            "SELECT * FROM orbit_invitation_by_token($1)", token_hash(token)
        )
        if row is None or row["accepted_at"] or row["revoked_at"]:
            raise NotFoundError("this invitation link is not valid (used, revoked or unknown)")
        if row["expires_at"] <= datetime.now(UTC):
            raise NotFoundError("this invitation link has expired; ask for a new one")
        tenant = await Tenant.select().where(Tenant.id == row["tenant_id"]).first()
        if tenant is None:
            raise NotFoundError("the workspace of this invitation no longer exists")
        return PendingInvitation(
            tenant_id=row["tenant_id"],
            id=row["id"],
            email=row["email"],
            role=Role(row["role"]),
            workspace=_workspace(tenant),
        )

    async def accept(self, token: str, user_id: UUID, client_ip: str | None = None) -> Workspace:
        """Accept the invitation behind ``token`` as ``user_id``: the user becomes a member.

        Only the invited address may accept: a forwarded or leaked link is useless
        to anyone logged in under another email. Scopes the current transaction
        to the invitation's workspace.
        """
        pending = await self.pending_invitation(token)
        await self.db.set_tenant(pending.tenant_id)
        await self._check_seat(pending.tenant_id, count_invitations=False)
        accepting = await self.db.fetchval("SELECT email_key FROM users WHERE id = $1", user_id)
        if accepting != validation.email_key(pending.email):
            raise PermissionDeniedError(
                f"this invitation is for {pending.email}; log in with that address to accept it"
            )
        await self.db.set_tenant(pending.tenant_id)
        claimed = await self.db.fetchval(
            """
            UPDATE invitations SET accepted_at = now()
            WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
            RETURNING id
            """,
            pending.tenant_id,
            pending.id,
        )
        if claimed is None:
            raise NotFoundError("this invitation link has just been used")
        membership_id = await self.db.fetchval(
            """
            INSERT INTO memberships (tenant_id, id, user_id, role, status)
            VALUES ($1, $2, $3, $4, 'active')
            ON CONFLICT (tenant_id, user_id) DO UPDATE SET status = 'active', role = EXCLUDED.role
            WHERE memberships.status <> 'active'
            RETURNING id
            """,
            pending.tenant_id,
            new_id(),
            user_id,
            pending.role.value,
        )
        if membership_id is not None:
            await enqueue_seat_sync(self.db, pending.tenant_id, "invitation accepted")
            joined = TenantContext(
                tenant_id=pending.tenant_id,
                tenant_slug=pending.workspace.slug,
                tenant_name=pending.workspace.name,
                scopes=frozenset(),
                user_id=user_id,
                membership_id=membership_id,
                client_ip=client_ip,
            )
            after = {"email": pending.email, "role": pending.role.value}
            await record(
                self.db, joined, "create", "member", membership_id, label=pending.email, after=after
            )
        return pending.workspace
