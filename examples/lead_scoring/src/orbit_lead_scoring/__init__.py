"""Lead scoring, an Orbit plugin built only on ``orbit.plugins.api``.

A contact earns points for a complete profile (email, phone, company), for each
interaction logged with them (notes, calls, meetings, emails) and for each deal won
with them. The score shows in the contact page's sidebar, marked "hot" from a
threshold the workspace's admin sets. Scores live in the plugin's own tables.

Events arrive at least once, so every point is written once per event id
(``lead_scoring_points``'s key), and a redelivered event changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from orbit.plugins.api import (
    Contact,
    Event,
    Fragment,
    Manifest,
    PluginContext,
    Setting,
    TimelineEntry,
    escape,
    get,
    hookimpl,
)
from orbit_lead_scoring.scoring import INTERACTIONS, profile_points

__version__ = "1.0.0"

README = """\
Scores every contact from what happens to them, and shows the score on the contact
page, marked **hot** once it reaches your threshold.

| what | points |
|---|---|
| the contact has an email address | 10 |
| … a phone number | 5 |
| … a company | 5 |
| each note, call, meeting or email logged with them | *points per interaction* (5) |
| each deal won with them | *points per won deal* (25) |

Reads contacts (`contacts:read`) to score their profile. Keeps its scores in its
own tables; uninstalling with "delete data" removes them.
"""

MANIFEST = Manifest(
    id="lead_scoring",
    name="Lead scoring",
    version=__version__,
    summary="Scores contacts on their profile, interactions and won deals",
    author="Orbit examples",
    homepage="https://example.com/orbit-lead-scoring",
    license="MIT",
    # Built against plugin API 1.0 (Orbit 0.1); the next minor Orbit may break it.
    requires_orbit=">=0.1,<0.2",
    scopes=("contacts:read",),
    slots=("contact.sidebar",),
    events=(
        "contact.created",
        "contact.updated",
        "contact.deleted",
        "contact.merged",
        "activity.created",
        "deal.won",
    ),
    settings=(
        Setting(
            name="points_per_interaction",
            label="Points per interaction",
            type="integer",
            default=5,
            minimum=0,
            maximum=100,
            help="For each note, call, meeting or email logged with the contact.",
        ),
        Setting(
            name="points_per_won_deal",
            label="Points per won deal",
            type="integer",
            default=25,
            minimum=0,
            maximum=1000,
        ),
        Setting(
            name="hot_threshold",
            label="Hot from",
            type="integer",
            default=50,
            minimum=1,
            maximum=10000,
            help="Contacts with at least this score are marked hot.",
        ),
    ),
    tables=("lead_scoring_scores", "lead_scoring_points"),
    migrations="orbit_lead_scoring.piccolo_app",
    readme=README,
)

_SETTING_DEFAULTS = {s.name: s.default for s in MANIFEST.settings}


def setting(ctx: PluginContext, name: str) -> int:
    """An integer setting of the tenant, or its default."""
    value = ctx.settings.get(name, _SETTING_DEFAULTS[name])
    return int(value)


# --- writing scores ------------------------------------------------------------------


async def _set_profile(ctx: PluginContext, contact_id: UUID, points: int, at: datetime) -> None:
    """Store the profile part of a score; an older update arriving late changes nothing."""
    await ctx.db.execute(
        """
        INSERT INTO lead_scoring_scores (tenant_id, contact_id, profile_points, profile_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (tenant_id, contact_id) DO UPDATE
        SET profile_points = EXCLUDED.profile_points, profile_at = EXCLUDED.profile_at,
            updated_at = now()
        WHERE lead_scoring_scores.profile_at IS NULL
           OR lead_scoring_scores.profile_at <= EXCLUDED.profile_at
        """,
        ctx.tenant_id,
        contact_id,
        points,
        at,
    )


async def _add_points(
    ctx: PluginContext, event: Event, contact_id: UUID, reason: str, points: int
) -> None:
    """Credit ``points`` once per event and contact (a redelivery finds the row there)."""
    inserted = await ctx.db.fetchval(
        """
        INSERT INTO lead_scoring_points (tenant_id, event_id, contact_id, reason, points,
                                         occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING
        RETURNING points
        """,
        ctx.tenant_id,
        event.id,
        contact_id,
        reason,
        points,
        event.occurred_at,
    )
    if inserted is None:
        return
    await ctx.db.execute(
        """
        INSERT INTO lead_scoring_scores (tenant_id, contact_id, event_points) VALUES ($1, $2, $3)
        ON CONFLICT (tenant_id, contact_id) DO UPDATE
        SET event_points = lead_scoring_scores.event_points + EXCLUDED.event_points,
            updated_at = now()
        """,
        ctx.tenant_id,
        contact_id,
        points,
    )


async def _forget(ctx: PluginContext, contact_id: UUID) -> None:
    for table in MANIFEST.tables:
        await ctx.db.execute(
            f"DELETE FROM {table} WHERE tenant_id = $1 AND contact_id = $2",
            ctx.tenant_id,
            contact_id,
        )


async def _merge(ctx: PluginContext, data: dict[str, Any]) -> None:
    """Merged contacts' points go to the survivor (an event scored for both counts once)."""
    survivor = UUID(data["survivor_id"])
    merged = [UUID(raw) for raw in data["merged_ids"]]
    await ctx.db.execute(
        """
        INSERT INTO lead_scoring_points (tenant_id, event_id, contact_id, reason, points,
                                         occurred_at)
        SELECT tenant_id, event_id, $2, reason, points, occurred_at FROM lead_scoring_points
        WHERE tenant_id = $1 AND contact_id = ANY ($3::uuid[])
        ON CONFLICT DO NOTHING
        """,
        ctx.tenant_id,
        survivor,
        merged,
    )
    for contact_id in merged:
        await _forget(ctx, contact_id)
    # Recomputed from the points, so a redelivered merge changes nothing.
    await ctx.db.execute(
        """
        INSERT INTO lead_scoring_scores (tenant_id, contact_id, event_points)
        SELECT $1, $2, coalesce(sum(points), 0) FROM lead_scoring_points
        WHERE tenant_id = $1 AND contact_id = $2
        ON CONFLICT (tenant_id, contact_id) DO UPDATE
        SET event_points = EXCLUDED.event_points, updated_at = now()
        """,
        ctx.tenant_id,
        survivor,
    )
    contact = data["contact"]
    await _set_profile(
        ctx, survivor, profile_points(contact), datetime.fromisoformat(contact["updated_at"])
    )


async def _profile_known(ctx: PluginContext, contact_id: UUID) -> bool:
    """Whether a contact's profile was scored (else: scored from the contact itself)."""
    found = await ctx.db.fetchval(
        "SELECT profile_at IS NOT NULL FROM lead_scoring_scores "
        "WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        contact_id,
    )
    return bool(found)


# --- hooks ---------------------------------------------------------------------------


@hookimpl
async def orbit_event(ctx: PluginContext, event: Event) -> None:
    """Score the contacts an event is about."""
    data = event.data
    if event.type in {"contact.created", "contact.updated"}:
        updated_at = datetime.fromisoformat(data["updated_at"])
        await _set_profile(ctx, UUID(data["id"]), profile_points(data), updated_at)
    elif event.type == "contact.deleted":
        await _forget(ctx, UUID(data["id"]))
    elif event.type == "contact.merged":
        await _merge(ctx, data)
    elif event.type == "activity.created":
        if data.get("contact_id") and data.get("kind") in INTERACTIONS:
            contact_id = UUID(data["contact_id"])
            contact = await ctx.contacts.get(contact_id)
            if contact is None:
                return
            if not await _profile_known(ctx, contact_id):
                await _set_profile(ctx, contact_id, _contact_profile(contact), contact.updated_at)
            reason = f"{data['kind']}: {data.get('subject') or data['kind']}"[:200]
            await _add_points(
                ctx, event, contact_id, reason, setting(ctx, "points_per_interaction")
            )
    elif event.type == "deal.won":
        for raw in data.get("contact_ids") or ():
            reason = f"won deal: {data.get('title', '')}"[:200]
            await _add_points(ctx, event, UUID(raw), reason, setting(ctx, "points_per_won_deal"))


def _contact_profile(contact: Contact) -> int:
    return profile_points(
        {"email": contact.email, "phone": contact.phone, "company_id": contact.company_id}
    )


async def _score(ctx: PluginContext, contact_id: UUID) -> tuple[int, int, int] | None:
    row = await ctx.db.fetchrow(
        "SELECT profile_points, event_points, profile_at IS NOT NULL AS known "
        "FROM lead_scoring_scores WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        contact_id,
    )
    if row is None:
        return None
    return row["profile_points"], row["event_points"], int(row["known"])


@hookimpl
async def orbit_ui_slot(ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment | None:
    """The contact's score in the contact page's sidebar."""
    if slot != "contact.sidebar" or subject_id is None:
        return None
    contact = await ctx.contacts.get(subject_id)
    if contact is None:
        return None
    found = await _score(ctx, subject_id)
    earned = found[1] if found else 0
    # Scored before the plugin saw the contact's own events: its profile as it is now.
    profile = found[0] if found and found[2] else _contact_profile(contact)
    total = profile + earned
    hot = total >= setting(ctx, "hot_threshold")
    badge = ' <span class="badge lead-score-hot">hot</span>' if hot else ""
    return Fragment(
        "Lead score",
        f'<p id="lead-score" data-score="{total}"><strong>{total}</strong> points{badge}</p>'
        f'<p class="muted">profile {profile} · activity {earned} · '
        f"hot from {escape(str(setting(ctx, 'hot_threshold')))}</p>",
    )


@hookimpl
async def orbit_timeline_entries(
    ctx: PluginContext, subject_type: str, subject_id: UUID
) -> list[TimelineEntry] | None:
    """Each scored event of a contact, on its timeline."""
    if subject_type != "contact":
        return None
    rows = await ctx.db.fetch(
        "SELECT reason, points, occurred_at FROM lead_scoring_points "
        "WHERE tenant_id = $1 AND contact_id = $2 ORDER BY occurred_at DESC LIMIT 20",
        ctx.tenant_id,
        subject_id,
    )
    return [
        TimelineEntry(row["occurred_at"], f"Lead score +{row['points']}", escape(row["reason"]))
        for row in rows
    ]


@hookimpl
def orbit_validate_settings(settings: dict[str, Any]) -> list[str]:
    """A won deal should count at least as much as one interaction."""
    interaction = settings.get(
        "points_per_interaction", _SETTING_DEFAULTS["points_per_interaction"]
    )
    won = settings.get("points_per_won_deal", _SETTING_DEFAULTS["points_per_won_deal"])
    if won is not None and interaction is not None and int(won) < int(interaction):
        return ["Points per won deal: must be at least the points per interaction"]
    return []


@hookimpl
async def orbit_contact_export(ctx: PluginContext, contact_id: UUID) -> dict[str, Any] | None:
    """The contact's score and the events that made it."""
    found = await _score(ctx, contact_id)
    if found is None:
        return None
    rows = await ctx.db.fetch(
        "SELECT event_id, reason, points, occurred_at FROM lead_scoring_points "
        "WHERE tenant_id = $1 AND contact_id = $2 ORDER BY occurred_at",
        ctx.tenant_id,
        contact_id,
    )
    return {
        "profile_points": found[0],
        "event_points": found[1],
        "points": [
            {
                "event_id": str(r["event_id"]),
                "reason": r["reason"],
                "points": r["points"],
                "occurred_at": r["occurred_at"].isoformat(),
            }
            for r in rows
        ],
    }


@hookimpl
async def orbit_contact_erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Forget the contact's score."""
    await _forget(ctx, contact_id)


@hookimpl
def orbit_api_routes() -> list[Any]:
    """``GET /api/v1/apps/lead_scoring/hot``: the workspace's hot contacts, best first."""

    @get("/hot")
    async def hot(plugin: PluginContext, limit: int = 20) -> dict[str, Any]:
        threshold = setting(plugin, "hot_threshold")
        rows = await plugin.db.fetch(
            "SELECT contact_id, profile_points + event_points AS score "
            "FROM lead_scoring_scores WHERE tenant_id = $1 "
            "AND profile_points + event_points >= $2 "
            "ORDER BY score DESC, contact_id LIMIT $3",
            plugin.tenant_id,
            threshold,
            min(max(limit, 1), 100),
        )
        return {
            "threshold": threshold,
            "items": [{"contact_id": str(r["contact_id"]), "score": r["score"]} for r in rows],
        }

    return [hot]
