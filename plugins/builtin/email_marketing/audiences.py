"""Who a campaign goes to: static lists and segments (saved filters), and their counts.

A **list** is contacts added by hand (or through the API). A **segment** is a saved
filter: contact conditions in the format of Orbit's saved views
(``{"field": "tags", "op": "contains", "value": "vip"}``, custom fields as
``custom.<key>``), evaluated by Orbit (``ctx.contacts.query``/``count``) under the
workspace's row-level security, plus email behaviour from this plugin's own events::

    {"event": "opened" | "clicked" | "not_opened" | "not_clicked",
     "campaign_id": "…" (optional: any campaign), "days": 30 (optional: ever)}

Behaviour counts people only: machine opens and scanner clicks never match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from uuid_utils.compat import uuid7

from orbit.plugins.builtin.email_marketing.errors import Problems, invalid, not_found

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from orbit.plugins.api import Contact, PluginContext

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_ADD = 1000
PAGE = 500
BEHAVIOUR_EVENTS = {
    "opened": "open",
    "clicked": "click",
    "not_opened": "open",
    "not_clicked": "click",
}
MAX_BEHAVIOUR = 10


def _name(raw: Any, problems: Problems) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_NAME:
        problems.add("name", f"is required, at most {MAX_NAME} characters")
        return ""
    return raw.strip()


def parse_uuid(raw: Any, field: str, problems: Problems) -> UUID | None:
    """``raw`` as an id, or a problem naming ``field``."""
    try:
        return UUID(str(raw))
    except ValueError:
        problems.add(field, f"{raw!r} is not an id")
        return None


# --- lists --------------------------------------------------------------------------


async def create_list(ctx: PluginContext, name: Any, description: Any = "") -> dict[str, Any]:
    """A new, empty static list; its name is unique in the workspace."""
    problems = Problems()
    clean = _name(name, problems)
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problems.add("description", f"must be text of at most {MAX_DESCRIPTION} characters")
    problems.raise_any()
    taken = await ctx.db.fetchval(
        "SELECT 1 FROM email_marketing_lists WHERE tenant_id = $1 AND lower(name) = lower($2)",
        ctx.tenant_id,
        clean,
    )
    if taken:
        raise invalid({"name": f"a list called {clean!r} exists already"})
    row = await ctx.db.fetchrow(
        "INSERT INTO email_marketing_lists (tenant_id, id, name, description) "
        "VALUES ($1, $2, $3, $4) RETURNING id, name, description, created_at",
        ctx.tenant_id,
        uuid7(),
        clean,
        description,
    )
    assert row is not None  # noqa: S101 - INSERT … RETURNING returns the row
    return {**dict(row), "member_count": 0}


async def lists(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's lists with their member counts, by name."""
    rows = await ctx.db.fetch(
        """
        SELECT l.id, l.name, l.description, l.created_at,
               (SELECT count(*) FROM email_marketing_list_members m
                WHERE m.tenant_id = l.tenant_id AND m.list_id = l.id) AS member_count
        FROM email_marketing_lists l WHERE l.tenant_id = $1 ORDER BY lower(l.name)
        """,
        ctx.tenant_id,
    )
    return [dict(row) for row in rows]


async def get_list(ctx: PluginContext, list_id: UUID) -> dict[str, Any]:
    """One list with its member count, or a 404."""
    row = await ctx.db.fetchrow(
        """
        SELECT l.id, l.name, l.description, l.created_at,
               (SELECT count(*) FROM email_marketing_list_members m
                WHERE m.tenant_id = l.tenant_id AND m.list_id = l.id) AS member_count
        FROM email_marketing_lists l WHERE l.tenant_id = $1 AND l.id = $2
        """,
        ctx.tenant_id,
        list_id,
    )
    if row is None:
        raise not_found("list", list_id)
    return dict(row)


async def add_members(ctx: PluginContext, list_id: UUID, contact_ids: Any) -> int:
    """Add contacts of this workspace to a list; how many were new. Unknown ids are a 400.

    The new members are announced as ``email_marketing.list_member_added`` (sequences
    triggered by the list enrol them).
    """
    await get_list(ctx, list_id)
    problems = Problems()
    if not isinstance(contact_ids, list) or not contact_ids or len(contact_ids) > MAX_ADD:
        problems.add("contact_ids", f"must be a list of 1 to {MAX_ADD} contact ids")
        problems.raise_any()
    ids = [parse_uuid(raw, f"contact_ids[{i}]", problems) for i, raw in enumerate(contact_ids)]
    problems.raise_any()
    for index, contact_id in enumerate(ids):
        if contact_id is not None and await ctx.contacts.get(contact_id) is None:
            problems.add(f"contact_ids[{index}]", f"contact {contact_id} not found here")
    problems.raise_any()
    added = await ctx.db.fetch(
        """
        INSERT INTO email_marketing_list_members (tenant_id, list_id, contact_id)
        SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING RETURNING contact_id
        """,
        ctx.tenant_id,
        list_id,
        list(dict.fromkeys(ids)),
    )
    if added:
        await ctx.events.emit(
            "email_marketing.list_member_added",
            {"list_id": str(list_id), "contact_ids": [str(row["contact_id"]) for row in added]},
        )
    return len(added)


async def remove_member(ctx: PluginContext, list_id: UUID, contact_id: UUID) -> bool:
    """Take a contact off a list; whether it was on it."""
    status = await ctx.db.execute(
        "DELETE FROM email_marketing_list_members "
        "WHERE tenant_id = $1 AND list_id = $2 AND contact_id = $3",
        ctx.tenant_id,
        list_id,
        contact_id,
    )
    return status != "DELETE 0"


async def forget_contacts(ctx: PluginContext, contact_ids: list[UUID]) -> None:
    """Contacts deleted or merged away leave every list."""
    await ctx.db.execute(
        "DELETE FROM email_marketing_list_members WHERE tenant_id = $1 AND contact_id = ANY($2)",
        ctx.tenant_id,
        contact_ids,
    )


# --- segments -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One email-behaviour condition of a segment."""

    event: str
    campaign_id: UUID | None
    days: int | None

    @property
    def negative(self) -> bool:
        """``not_opened``/``not_clicked``: contacts who did not."""
        return self.event.startswith("not_")


def check_behaviour(raw: Any, problems: Problems) -> list[Behaviour]:
    """Behaviour conditions, each checked (``behaviour[i].event``… named when wrong)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_BEHAVIOUR:
        problems.add("behaviour", f"must be a list of at most {MAX_BEHAVIOUR} conditions")
        return []
    found: list[Behaviour] = []
    for index, item in enumerate(raw):
        where = f"behaviour[{index}]"
        if not isinstance(item, dict) or item.get("event") not in BEHAVIOUR_EVENTS:
            problems.add(f"{where}.event", f"must be one of {', '.join(BEHAVIOUR_EVENTS)}")
            continue
        unknown = set(item) - {"event", "campaign_id", "days"}
        if unknown:
            problems.add(where, f"unknown key {min(unknown)!r}")
        campaign = item.get("campaign_id")
        campaign_id = parse_uuid(campaign, f"{where}.campaign_id", problems) if campaign else None
        days = item.get("days")
        if days is not None and (not isinstance(days, int) or not 1 <= days <= 3650):  # noqa: PLR2004
            problems.add(f"{where}.days", "must be a number of days from 1 to 3650")
            days = None
        found.append(Behaviour(item["event"], campaign_id, days))
    return found


def _behaviour_json(conditions: list[Behaviour]) -> str:
    return json.dumps(
        [
            {
                "event": b.event,
                **({"campaign_id": str(b.campaign_id)} if b.campaign_id else {}),
                **({"days": b.days} if b.days else {}),
            }
            for b in conditions
        ]
    )


async def _check_segment(ctx: PluginContext, body: dict[str, Any]) -> tuple[str, Any, str]:
    problems = Problems()
    name = _name(body.get("name"), problems)
    filters = body.get("filters") or []
    behaviour = check_behaviour(body.get("behaviour"), problems)
    problems.raise_any()
    # Orbit checks the contact filters (a 400 naming filters[i]… when malformed).
    await ctx.contacts.count(filters)
    return name, filters, _behaviour_json(behaviour)


async def create_segment(ctx: PluginContext, body: dict[str, Any]) -> dict[str, Any]:
    """A saved segment (name, contact ``filters``, ``behaviour``); a 400 names bad parts."""
    name, filters, behaviour = await _check_segment(ctx, body)
    taken = await ctx.db.fetchval(
        "SELECT 1 FROM email_marketing_segments WHERE tenant_id = $1 AND lower(name) = lower($2)",
        ctx.tenant_id,
        name,
    )
    if taken:
        raise invalid({"name": f"a segment called {name!r} exists already"})
    segment_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO email_marketing_segments (tenant_id, id, name, filters, behaviour) "
        "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
        ctx.tenant_id,
        segment_id,
        name,
        json.dumps(filters),
        behaviour,
    )
    return await refresh_count(ctx, segment_id)


async def update_segment(
    ctx: PluginContext, segment_id: UUID, body: dict[str, Any]
) -> dict[str, Any]:
    """Change a segment's name, filters or behaviour."""
    await get_segment(ctx, segment_id)
    name, filters, behaviour = await _check_segment(ctx, body)
    await ctx.db.execute(
        "UPDATE email_marketing_segments SET name = $3, filters = $4::jsonb, "
        "behaviour = $5::jsonb, updated_at = now() WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        segment_id,
        name,
        json.dumps(filters),
        behaviour,
    )
    return await refresh_count(ctx, segment_id)


def _segment(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("filters", "behaviour"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


async def segments(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's segments with their last counts, by name."""
    rows = await ctx.db.fetch(
        "SELECT id, name, filters, behaviour, member_count, counted_at, created_at, updated_at "
        "FROM email_marketing_segments WHERE tenant_id = $1 ORDER BY lower(name)",
        ctx.tenant_id,
    )
    return [_segment(row) for row in rows]


async def get_segment(ctx: PluginContext, segment_id: UUID) -> dict[str, Any]:
    """One segment, or a 404."""
    row = await ctx.db.fetchrow(
        "SELECT id, name, filters, behaviour, member_count, counted_at, created_at, updated_at "
        "FROM email_marketing_segments WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        segment_id,
    )
    if row is None:
        raise not_found("segment", segment_id)
    return _segment(row)


async def _behaviour_sets(
    ctx: PluginContext, conditions: list[Behaviour]
) -> tuple[set[UUID] | None, set[UUID]]:
    """(contacts every positive condition admits, or None when none; contacts excluded)."""
    admitted: set[UUID] | None = None
    excluded: set[UUID] = set()
    for condition in conditions:
        rows = await ctx.db.fetch(
            """
            SELECT DISTINCT contact_id FROM email_marketing_events
            WHERE tenant_id = $1 AND kind = $2 AND NOT machine AND contact_id IS NOT NULL
              AND ($3::uuid IS NULL OR campaign_id = $3)
              AND ($4::int IS NULL OR occurred_at >= now() - make_interval(days => $4))
            """,
            ctx.tenant_id,
            BEHAVIOUR_EVENTS[condition.event],
            condition.campaign_id,
            condition.days,
        )
        ids = {row["contact_id"] for row in rows}
        if condition.negative:
            excluded |= ids
        else:
            admitted = ids if admitted is None else admitted & ids
    return admitted, excluded


def _conditions(segment: dict[str, Any]) -> list[Behaviour]:
    problems = Problems()
    found = check_behaviour(segment["behaviour"], problems)
    problems.raise_any()
    return found


async def segment_contacts(ctx: PluginContext, segment: dict[str, Any]) -> AsyncIterator[Contact]:
    """Every contact in the segment now, in id order (keyset pages through Orbit)."""
    admitted, excluded = await _behaviour_sets(ctx, _conditions(segment))
    after: UUID | None = None
    while True:
        page = await ctx.contacts.query(segment["filters"] or None, after=after, limit=PAGE)
        for contact in page:
            if contact.id in excluded or (admitted is not None and contact.id not in admitted):
                continue
            yield contact
        if len(page) < PAGE:
            return
        after = page[-1].id


async def count_segment(ctx: PluginContext, segment: dict[str, Any]) -> int:
    """How many contacts the segment holds now."""
    conditions = _conditions(segment)
    if not conditions:
        count: int = await ctx.contacts.count(segment["filters"] or None)
        return count
    return sum([1 async for _ in segment_contacts(ctx, segment)])


async def refresh_count(ctx: PluginContext, segment_id: UUID) -> dict[str, Any]:
    """Count the segment again and keep the count (lists and pages show it)."""
    segment = await get_segment(ctx, segment_id)
    count = await count_segment(ctx, segment)
    await ctx.db.execute(
        "UPDATE email_marketing_segments SET member_count = $3, counted_at = now() "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        segment_id,
        count,
    )
    return {**segment, "member_count": count}


CHANGES_COUNTS = frozenset({"contact.created", "contact.updated", "contact.deleted",
                            "contact.merged"})  # fmt: skip
"""Contact events after which segment counts may have moved."""
RECOUNT_AT_ONCE = 3
"""Segments counted again per run of the send job (a count may take a second at 1M)."""


async def counts_changed(ctx: PluginContext) -> None:
    """A contact changed: every segment's count is stale until the send job counts it again.

    One cheap statement per event; the counting itself happens at most once a run of
    the send job, however many contacts changed (an import of thousands recounts once).
    """
    await ctx.db.execute(
        "UPDATE email_marketing_segments SET counted_at = NULL "
        "WHERE tenant_id = $1 AND counted_at IS NOT NULL",
        ctx.tenant_id,
    )


async def recount_stale(ctx: PluginContext) -> int:
    """Count again the segments whose contacts changed since their count; how many."""
    stale = await ctx.db.fetch(
        "SELECT id FROM email_marketing_segments WHERE tenant_id = $1 AND counted_at IS NULL "
        "ORDER BY updated_at LIMIT $2",
        ctx.tenant_id,
        RECOUNT_AT_ONCE,
    )
    for row in stale:
        try:
            await refresh_count(ctx, row["id"])
        except Exception:
            ctx.log.warning("segment %s could not be counted", row["id"], exc_info=True)
            await ctx.db.execute(
                "UPDATE email_marketing_segments SET counted_at = now(), member_count = NULL "
                "WHERE tenant_id = $1 AND id = $2",
                ctx.tenant_id,
                row["id"],
            )
    return len(stale)


async def list_contacts(ctx: PluginContext, list_id: UUID) -> AsyncIterator[Contact]:
    """Every member of a list that is still a contact here, in id order.

    A list that is small next to the workspace is read member by member; a large one
    by paging through the workspace's contacts once (``count / 500`` queries instead of
    one per member), keeping the members.
    """
    members = await ctx.db.fetchval(
        "SELECT count(*) FROM email_marketing_list_members WHERE tenant_id = $1 AND list_id = $2",
        ctx.tenant_id,
        list_id,
    )
    if members * PAGE > await ctx.contacts.count():
        async for contact in _scan_members(ctx, list_id):
            yield contact
        return
    after: UUID | None = None
    while True:
        rows = await _member_page(ctx, list_id, after)
        for contact_id in rows:
            member = await ctx.contacts.get(contact_id)
            if member is not None:
                yield member
        if len(rows) < PAGE:
            return
        after = rows[-1]


async def _member_page(ctx: PluginContext, list_id: UUID, after: UUID | None) -> list[UUID]:
    rows = await ctx.db.fetch(
        "SELECT contact_id FROM email_marketing_list_members "
        "WHERE tenant_id = $1 AND list_id = $2 AND ($3::uuid IS NULL OR contact_id > $3) "
        "ORDER BY contact_id LIMIT $4",
        ctx.tenant_id,
        list_id,
        after,
        PAGE,
    )
    return [row["contact_id"] for row in rows]


async def _scan_members(ctx: PluginContext, list_id: UUID) -> AsyncIterator[Contact]:
    wanted: set[UUID] = set()
    after: UUID | None = None
    while page := await _member_page(ctx, list_id, after):
        wanted.update(page)
        after = page[-1]
    after = None
    while wanted:
        contacts = await ctx.contacts.query(None, after=after, limit=PAGE)
        for contact in contacts:
            if contact.id in wanted:
                wanted.discard(contact.id)
                yield contact
        if len(contacts) < PAGE:
            return
        after = contacts[-1].id
