"""Members and invitations over JSON."""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.background_tasks import BackgroundTask
from litestar.response import File
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from orbit.platform.errors import InvalidInputError, NotAuthenticatedError, PermissionDeniedError
from orbit.platform.ids import parse_id
from orbit.tenants import portability
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.quotas import Quotas
from orbit.tenants.roles import Role, Scope
from orbit.tenants.service import WorkspaceService
from orbit.tenants.visibility import VisibilityService

log = logging.getLogger(__name__)


class MemberOut(msgspec.Struct, kw_only=True):
    """A member of the workspace."""

    id: UUID
    email: str
    name: str
    role: str
    status: str
    created_at: datetime


class UsageOut(msgspec.Struct, kw_only=True):
    """How much of one plan quota the workspace uses (storage in bytes)."""

    quota: str
    used: int
    limit: int


class RoleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A member's new role: admin, member or viewer."""

    role: str


class MemberStatusIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A member's new status: ``active`` (a seat) or ``deactivated``."""

    status: Literal["active", "deactivated"]


class InvitationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Invite an email address with a role."""

    email: Annotated[str, Meta(max_length=320)]
    role: str = "member"


class InvitationOut(msgspec.Struct, kw_only=True):
    """An open invitation."""

    id: UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


class InvitationCreated(msgspec.Struct, kw_only=True):
    """A new invitation with the link to send to the invitee (shown once)."""

    invitation: InvitationOut
    accept_url: str


def accept_url(request_base: str, token: str, *, email: str, workspace: str) -> str:
    """The link an invitee opens; logged until invitation emails are sent."""
    url = f"{request_base.rstrip('/')}/invite/{token}"
    log.info("invitation for %s to workspace %s: %s", email, workspace, url)
    return url


class MemberController(Controller):
    """Members and invitations of the current workspace."""

    path = "/api/v1"
    tags = ["members"]

    @get("/members")
    async def list_members(
        self, tenant: TenantContext, workspaces: WorkspaceService
    ) -> list[MemberOut]:
        """Members, oldest first."""
        return [MemberOut(**row) for row in await workspaces.members(tenant)]

    @put("/members/{membership_id:str}/role")
    async def change_role(
        self,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        membership_id: str,
        data: RoleIn,
    ) -> dict[str, str]:
        """Change a member's role (admins and owners; never the owner's or your own)."""
        changed = await workspaces.change_role(tenant, parse_id(membership_id, "member"), data.role)
        return {key: str(value) for key, value in changed.items()}

    @put("/members/{membership_id:str}/status")
    async def change_status(
        self,
        tenant: TenantContext,
        workspaces: WorkspaceService,
        membership_id: str,
        data: MemberStatusIn,
    ) -> dict[str, str]:
        """Deactivate a member or activate them again (a seat; Stripe's quantity follows)."""
        changed = await workspaces.set_member_status(
            tenant, parse_id(membership_id, "member"), active=data.status == "active"
        )
        return {key: str(value) for key, value in changed.items()}

    @get("/usage")
    async def usage(self, tenant: TenantContext, workspaces: WorkspaceService) -> list[UsageOut]:
        """The plan's quotas (contacts, seats, storage, emails this month) and their use."""
        tenant.require(Scope.MEMBERS_READ)
        found = await Quotas(workspaces.db).usage(tenant.tenant_id)
        return [UsageOut(quota=u.quota, used=u.used, limit=u.limit) for u in found]

    @get("/invitations")
    async def list_invitations(
        self, tenant: TenantContext, workspaces: WorkspaceService
    ) -> list[InvitationOut]:
        """Open invitations."""
        return [InvitationOut(**row) for row in await workspaces.invitations(tenant)]

    @post("/invitations", status_code=HTTP_201_CREATED)
    async def invite(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        workspaces: WorkspaceService,
        data: InvitationIn,
    ) -> InvitationCreated:
        """Invite someone; until email lands, the link is returned and logged."""
        row, token = await workspaces.invite(tenant, data.email, data.role)
        url = accept_url(
            str(request.base_url), token, email=row["email"], workspace=tenant.tenant_slug
        )
        fields = {k: row[k] for k in ("id", "email", "role", "created_at", "expires_at")}
        return InvitationCreated(invitation=InvitationOut(**fields), accept_url=url)

    @delete("/invitations/{invitation_id:str}")
    async def revoke_invitation(
        self, tenant: TenantContext, workspaces: WorkspaceService, invitation_id: str
    ) -> None:
        """Revoke an open invitation."""
        await workspaces.revoke_invitation(tenant, parse_id(invitation_id, "invitation"))

    @post("/invitations/{token:str}/accept", status_code=HTTP_200_OK)
    async def accept(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        workspaces: WorkspaceService,
        token: str,
    ) -> dict[str, str]:
        """Accept an invitation as the logged-in user."""
        if principal.user_id is None:
            raise NotAuthenticatedError("log in (or sign up) first, then accept the invitation")
        ip = request.client.host if request.client else None
        workspace = await workspaces.accept(token, principal.user_id, ip)
        return {"slug": workspace.slug, "name": workspace.name}


class VisibilityIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which records members and viewers see: ``all``, their ``team``'s, or their ``own``."""

    member: Literal["all", "team", "own"] | None = None
    viewer: Literal["all", "team", "own"] | None = None


class TeamIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new team."""

    name: Annotated[str, Meta(max_length=100)]


class TeamMembersIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The team's members, as membership ids (replaces the current list)."""

    membership_ids: Annotated[list[UUID], Meta(max_length=1000)]


class TeamOut(msgspec.Struct, kw_only=True):
    """A team and its members."""

    id: UUID
    name: str
    member_ids: list[UUID]


class VisibilityController(Controller):
    """Record visibility per role, and teams (owners and admins change them)."""

    path = "/api/v1"
    tags = ["members"]

    @get("/settings/visibility")
    async def get_visibility(
        self, tenant: TenantContext, visibility: VisibilityService
    ) -> dict[str, str]:
        """Which records members and viewers see."""
        return dict(await visibility.settings(tenant))

    @put("/settings/visibility")
    async def set_visibility(
        self, tenant: TenantContext, visibility: VisibilityService, data: VisibilityIn
    ) -> dict[str, str]:
        """Change it for one or both roles."""
        values = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        return dict(await visibility.set(tenant, values))

    @get("/teams")
    async def list_teams(
        self, tenant: TenantContext, visibility: VisibilityService
    ) -> list[TeamOut]:
        """Teams and their members."""
        return [TeamOut(**team) for team in await visibility.teams(tenant)]  # type: ignore[arg-type]

    @post("/teams", status_code=HTTP_201_CREATED)
    async def create_team(
        self, tenant: TenantContext, visibility: VisibilityService, data: TeamIn
    ) -> TeamOut:
        """Create an empty team."""
        team_id = await visibility.create_team(tenant, data.name)
        return TeamOut(id=team_id, name=data.name.strip(), member_ids=[])

    @put("/teams/{team_id:str}/members")
    async def set_team_members(
        self,
        tenant: TenantContext,
        visibility: VisibilityService,
        team_id: str,
        data: TeamMembersIn,
    ) -> TeamOut:
        """Replace the team's members."""
        parsed = parse_id(team_id, "team")
        await visibility.set_members(tenant, parsed, data.membership_ids)
        team = next(t for t in await visibility.teams(tenant) if t["id"] == parsed)
        return TeamOut(**team)  # type: ignore[arg-type]

    @delete("/teams/{team_id:str}")
    async def delete_team(
        self, tenant: TenantContext, visibility: VisibilityService, team_id: str
    ) -> None:
        """Delete a team."""
        await visibility.delete_team(tenant, parse_id(team_id, "team"))


class DeleteWorkspaceIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Deleting needs the workspace's slug typed again."""

    confirm: str


class WorkspaceController(Controller):
    """The workspace as a whole: export it, delete it (owners only)."""

    path = "/api/v1/workspace"
    tags = ["workspace"]

    @get("/export")
    async def export_workspace(self, tenant: TenantContext, workspaces: WorkspaceService) -> File:
        """A zip of CSV + JSON with every record; ``orbit tenants import`` restores it."""
        _owner_only(tenant, "export the whole workspace")
        workspace = await workspaces.by_slug(tenant.tenant_slug)
        assert workspace is not None  # noqa: S101 - the caller is inside it
        folder = Path(tempfile.mkdtemp(prefix="orbit-workspace-"))
        path = folder / f"{workspace.slug}-{datetime.now(UTC):%Y%m%d-%H%M%S}.zip"
        await portability.export_workspace(workspaces.db, workspace, path)
        return File(
            path=path,
            filename=path.name,
            media_type="application/zip",
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    @delete("/", status_code=HTTP_204_NO_CONTENT)
    async def delete_workspace(
        self, tenant: TenantContext, workspaces: WorkspaceService, data: DeleteWorkspaceIn
    ) -> None:
        """Delete the workspace and all its data, for good."""
        _owner_only(tenant, "delete the workspace")
        if data.confirm != tenant.tenant_slug:
            reason = f"type the workspace's slug {tenant.tenant_slug!r} to confirm"
            raise InvalidInputError(f"confirm: {reason}", fields={"confirm": reason})
        await portability.delete_workspace(workspaces.db, tenant.tenant_id)


def _owner_only(tenant: TenantContext, what: str) -> None:
    if tenant.role is not Role.OWNER:
        raise PermissionDeniedError(f"only the workspace's owner may {what}")
