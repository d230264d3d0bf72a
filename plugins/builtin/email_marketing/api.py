"""The plugin's REST API under ``/api/v1/apps/email_marketing/``.

Lists, segments, templates and campaigns; the pages use the same services.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID  # noqa: TC003 - Litestar reads the hints at run time

from orbit.plugins.api import (
    PluginContext,
    delete,
    get,
    post,
    put,
)
from orbit.plugins.builtin.email_marketing import audiences, campaigns, library


@get("/lists")
async def list_lists(plugin: PluginContext) -> dict[str, Any]:
    """The workspace's lists with member counts."""
    return {"items": await audiences.lists(plugin)}


@post("/lists")
async def create_list(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Create a static list."""
    return await audiences.create_list(plugin, data.get("name"), data.get("description", ""))


@get("/lists/{list_id:uuid}")
async def get_list(plugin: PluginContext, list_id: UUID) -> dict[str, Any]:
    """One list."""
    return await audiences.get_list(plugin, list_id)


@post("/lists/{list_id:uuid}/members")
async def add_members(plugin: PluginContext, list_id: UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Add contacts to a list."""
    added = await audiences.add_members(plugin, list_id, data.get("contact_ids"))
    return {"added": added, **await audiences.get_list(plugin, list_id)}


@delete("/lists/{list_id:uuid}/members/{contact_id:uuid}", status_code=204)
async def remove_member(plugin: PluginContext, list_id: UUID, contact_id: UUID) -> None:
    """Take a contact off a list."""
    await audiences.get_list(plugin, list_id)
    await audiences.remove_member(plugin, list_id, contact_id)


@get("/segments")
async def list_segments(plugin: PluginContext) -> dict[str, Any]:
    """The workspace's segments with their last counts."""
    return {"items": await audiences.segments(plugin)}


@post("/segments")
async def create_segment(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Save a segment (contact filters and email behaviour)."""
    return await audiences.create_segment(plugin, data)


@get("/segments/{segment_id:uuid}")
async def get_segment(plugin: PluginContext, segment_id: UUID) -> dict[str, Any]:
    """One segment."""
    return await audiences.get_segment(plugin, segment_id)


@put("/segments/{segment_id:uuid}")
async def update_segment(
    plugin: PluginContext, segment_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a segment."""
    return await audiences.update_segment(plugin, segment_id, data)


@post("/segments/{segment_id:uuid}/count", status_code=200)
async def count_segment(plugin: PluginContext, segment_id: UUID) -> dict[str, Any]:
    """Count a segment's contacts now."""
    return await audiences.refresh_count(plugin, segment_id)


@get("/templates")
async def list_templates(plugin: PluginContext) -> dict[str, Any]:
    """The workspace's templates."""
    return {"items": await library.templates_of(plugin)}


@post("/templates")
async def create_template(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Save a block template."""
    return await library.create(plugin, data)


@get("/templates/{template_id:uuid}")
async def get_template(plugin: PluginContext, template_id: UUID) -> dict[str, Any]:
    """One template."""
    return await library.get(plugin, template_id)


@put("/templates/{template_id:uuid}")
async def update_template(
    plugin: PluginContext, template_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a template."""
    return await library.update(plugin, template_id, data)


@post("/templates/{template_id:uuid}/preview", status_code=200)
async def preview_template(
    plugin: PluginContext, template_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Render a template for a contact."""
    return await library.preview(plugin, template_id, data.get("contact_id"))


@post("/templates/{template_id:uuid}/test", status_code=200)
async def test_send(
    plugin: PluginContext, template_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Send a template once to an address."""
    return await library.test_send(plugin, template_id, data)


@get("/campaigns")
async def list_campaigns(plugin: PluginContext) -> dict[str, Any]:
    """The workspace's campaigns with their counters."""
    return {"items": await campaigns.all_campaigns(plugin)}


@post("/campaigns")
async def create_campaign(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Create a draft campaign."""
    return await campaigns.create(plugin, data)


@get("/campaigns/{campaign_id:uuid}")
async def get_campaign(plugin: PluginContext, campaign_id: UUID) -> dict[str, Any]:
    """One campaign with its report."""
    campaign = await campaigns.get(plugin, campaign_id)
    return {**campaign, "report": campaigns.report(campaign)}


@put("/campaigns/{campaign_id:uuid}")
async def update_campaign(
    plugin: PluginContext, campaign_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a draft campaign."""
    return await campaigns.update(plugin, campaign_id, data)


@post("/campaigns/{campaign_id:uuid}/schedule", status_code=200)
async def schedule(
    plugin: PluginContext, campaign_id: UUID, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Send a draft now or at ``scheduled_at``."""
    return await campaigns.schedule(plugin, campaign_id, data or {})


@post("/campaigns/{campaign_id:uuid}/pause", status_code=200)
async def pause(plugin: PluginContext, campaign_id: UUID) -> dict[str, Any]:
    """Pause a scheduled or sending campaign."""
    return await campaigns.pause(plugin, campaign_id)


@post("/campaigns/{campaign_id:uuid}/resume", status_code=200)
async def resume(plugin: PluginContext, campaign_id: UUID) -> dict[str, Any]:
    """Resume a paused campaign."""
    return await campaigns.resume(plugin, campaign_id)


@post("/campaigns/{campaign_id:uuid}/cancel", status_code=200)
async def cancel(plugin: PluginContext, campaign_id: UUID) -> dict[str, Any]:
    """Cancel a campaign for good."""
    return await campaigns.cancel(plugin, campaign_id)


def routes() -> list[Any]:
    """Every API route handler."""
    return [
        list_lists, create_list, get_list, add_members, remove_member,
        list_segments, create_segment, get_segment, update_segment, count_segment,
        list_templates, create_template, get_template, update_template, preview_template,
        test_send, list_campaigns, create_campaign, get_campaign, update_campaign,
        schedule, pause, resume, cancel,
    ]  # fmt: skip
