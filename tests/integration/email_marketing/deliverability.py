"""Helpers for the deliverability tests: act as the plugin in a workspace, seed messages."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from uuid import UUID

from uuid_utils.compat import uuid7

from orbit.platform.runtime import Runtime
from orbit.plugins.context import PluginContext
from tests.conftest import Member, plugin_transaction

from .conftest import PLUGIN


def acting(runtime: Runtime, member: Member) -> AbstractAsyncContextManager[PluginContext]:
    """The plugin's context in the member's workspace, in one committed transaction."""
    return plugin_transaction(runtime, member, PLUGIN)


async def seed_messages(ctx: PluginContext, emails: list[str]) -> list[UUID]:
    """A sent campaign with one message per address; the messages' ids."""
    template_id, campaign_id = uuid7(), uuid7()
    await ctx.db.execute(
        "INSERT INTO email_marketing_templates (tenant_id, id, name, subject) "
        "VALUES ($1, $2, 'Spring', 'Spring offers')",
        ctx.tenant_id,
        template_id,
    )
    await ctx.db.execute(
        "INSERT INTO email_marketing_campaigns (tenant_id, id, name, template_id, "
        "audience_kind, audience_id, from_email, status) "
        "VALUES ($1, $2, 'Spring', $3, 'list', $4, 'news@shop.example.com', 'sent')",
        ctx.tenant_id,
        campaign_id,
        template_id,
        uuid7(),
    )
    ids = [uuid7() for _ in emails]
    await ctx.db.execute(
        "INSERT INTO email_marketing_messages (tenant_id, id, campaign_id, email, domain, status) "
        "SELECT $1, m.id, $2, m.email, split_part(m.email, '@', 2), 'sent' "
        "FROM unnest($3::uuid[], $4::text[]) AS m (id, email)",
        ctx.tenant_id,
        campaign_id,
        ids,
        emails,
    )
    return ids
