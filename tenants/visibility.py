"""Record visibility: which owners' contacts, companies and deals a member may see.

A workspace setting per role (members and viewers; owners and admins always see
everything): ``all`` records, only their ``own``, or their ``team``'s — the
records owned by anyone who shares a team with them. API keys act for the
workspace and see everything their scopes allow.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

from orbit.platform import validation
from orbit.platform.audit.log import record
from orbit.platform.errors import ConflictError, InvalidInputError, NotFoundError
from orbit.platform.ids import new_id
from orbit.tenants.roles import Role, Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

Visibility = Literal["all", "team", "own"]
VISIBILITIES: tuple[Visibility, ...] = ("all", "team", "own")
CONFIGURABLE_ROLES = (Role.MEMBER, Role.VIEWER)


async def visible_owners(
    db: Database, tenant_id: UUID, membership_id: UUID, role: Role
) -> frozenset[UUID] | None:
    """The owners whose records ``membership_id`` may see; ``None`` means every record."""
    if role not in CONFIGURABLE_ROLES:
        return None
    row = await db.fetchrow(_SETTING_AND_MATES, tenant_id, membership_id, role.value)
    if row is None or row["setting"] in (None, "all"):
        return None
    if row["setting"] == "own":
        return frozenset({membership_id})
    return frozenset({membership_id, *row["mates"]})


_SETTING_AND_MATES = """
    SELECT t.record_visibility ->> $3 AS setting,
           CASE WHEN t.record_visibility ->> $3 = 'team' THEN ARRAY(
               SELECT DISTINCT mate.membership_id FROM team_members mine
               JOIN team_members mate
                 ON mate.tenant_id = mine.tenant_id AND mate.team_id = mine.team_id
               WHERE mine.tenant_id = $1 AND mine.membership_id = $2) END AS mates
    FROM tenants t WHERE t.id = $1
"""
"""The role's setting ($3) and, for ``team``, the member's ($2) team mates: one round trip."""


class VisibilityService:
    """Admins set the per-role visibility and manage teams."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def settings(self, ctx: TenantContext) -> dict[str, Visibility]:
        """The visibility of each configurable role (``all`` unless set)."""
        ctx.require(Scope.MEMBERS_READ)
        raw = await self.db.fetchval(
            "SELECT record_visibility FROM tenants WHERE id = $1", ctx.tenant_id
        )
        stored = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        return {role.value: stored.get(role.value, "all") for role in CONFIGURABLE_ROLES}

    async def set(self, ctx: TenantContext, values: dict[str, str]) -> dict[str, Visibility]:
        """Change the visibility of some roles; a 400 names a bad role or value."""
        ctx.require(Scope.MEMBERS_WRITE)
        problems = validation.FieldProblems()
        allowed_roles = {role.value for role in CONFIGURABLE_ROLES}
        for role, value in values.items():
            if role not in allowed_roles:
                problems.add(role, "only member and viewer visibility can be set")
            elif value not in VISIBILITIES:
                problems.add(role, f"must be one of {', '.join(VISIBILITIES)}")
        problems.raise_any()
        current = await self.settings(ctx)
        await self.db.execute(
            "UPDATE tenants SET record_visibility = $2::jsonb WHERE id = $1",
            ctx.tenant_id,
            json.dumps(current | values),
        )
        after = await self.settings(ctx)
        await record(
            self.db,
            ctx,
            "update",
            "visibility",
            None,
            label="record visibility",
            before=current,
            after=after,
        )
        return after

    async def teams(self, ctx: TenantContext) -> list[dict[str, object]]:
        """Teams with their member ids, by name."""
        ctx.require(Scope.MEMBERS_READ)
        rows = await self.db.fetch(
            """
            SELECT t.id, t.name, coalesce(array_agg(m.membership_id ORDER BY m.membership_id)
                   FILTER (WHERE m.membership_id IS NOT NULL), '{}') AS member_ids
            FROM teams t LEFT JOIN team_members m ON m.tenant_id = t.tenant_id AND m.team_id = t.id
            WHERE t.tenant_id = $1 GROUP BY t.id, t.name ORDER BY t.name
            """,
            ctx.tenant_id,
        )
        return [
            {"id": r["id"], "name": r["name"], "member_ids": list(r["member_ids"])} for r in rows
        ]

    async def create_team(self, ctx: TenantContext, name: str) -> UUID:
        """A new, empty team; a 409 when the name is taken."""
        ctx.require(Scope.MEMBERS_WRITE)
        name = validation.text(name, "name", max_length=100, required=True)
        team_id = new_id()
        inserted = await self.db.fetchval(
            "INSERT INTO teams (tenant_id, id, name) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
            ctx.tenant_id,
            team_id,
            name,
        )
        if inserted is None:
            raise ConflictError(f"a team called {name!r} exists", fields={"name": "is taken"})
        await record(self.db, ctx, "create", "team", team_id, label=name, after={"name": name})
        return team_id

    async def set_members(self, ctx: TenantContext, team_id: UUID, members: list[UUID]) -> None:
        """Make ``members`` (memberships of this workspace) exactly the team's members."""
        ctx.require(Scope.MEMBERS_WRITE)
        name = await self.db.fetchval(
            "SELECT name FROM teams WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, team_id
        )
        if name is None:
            raise NotFoundError(f"team {team_id} not found in this workspace")
        was = await self.db.fetchval(
            "SELECT coalesce(array_agg(membership_id ORDER BY membership_id), '{}') "
            "FROM team_members WHERE tenant_id = $1 AND team_id = $2",
            ctx.tenant_id,
            team_id,
        )
        unique = list(dict.fromkeys(members))
        found = await self.db.fetchval(
            "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            unique,
        )
        if found != len(unique):
            reason = "lists memberships that are not in this workspace"
            raise InvalidInputError(f"membership_ids {reason}", fields={"membership_ids": reason})
        await self.db.execute(
            "DELETE FROM team_members WHERE tenant_id = $1 AND team_id = $2", ctx.tenant_id, team_id
        )
        await self.db.execute(
            "INSERT INTO team_members (tenant_id, team_id, membership_id) "
            "SELECT $1, $2, unnest($3::uuid[])",
            ctx.tenant_id,
            team_id,
            unique,
        )
        await record(
            self.db,
            ctx,
            "update",
            "team",
            team_id,
            label=name,
            before={"member_ids": sorted(map(str, was))},
            after={"member_ids": sorted(map(str, unique))},
        )

    async def delete_team(self, ctx: TenantContext, team_id: UUID) -> None:
        """Delete a team (its members stay in the workspace)."""
        ctx.require(Scope.MEMBERS_WRITE)
        deleted = await self.db.fetchval(
            "DELETE FROM teams WHERE tenant_id = $1 AND id = $2 RETURNING name",
            ctx.tenant_id,
            team_id,
        )
        if deleted is None:
            raise NotFoundError(f"team {team_id} not found in this workspace")
        await record(
            self.db, ctx, "delete", "team", team_id, label=deleted, before={"name": deleted}
        )
