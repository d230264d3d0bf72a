"""Templates: saved block templates, a preview on a real contact, a test send."""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from uuid_utils.compat import uuid7

from orbit.plugins.builtin.email_marketing import mime, sending, templates, transport
from orbit.plugins.builtin.email_marketing.audiences import MAX_NAME, parse_uuid
from orbit.plugins.builtin.email_marketing.campaigns import _email
from orbit.plugins.builtin.email_marketing.errors import Problems, invalid, not_found

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.plugins.api import PluginContext

SAMPLE = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "",
    "tags": [],
    "custom": {},
}
"""Who a template is checked against when no contact is given."""


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("blocks"), str):
        out["blocks"] = json.loads(out["blocks"])
    return out


async def _check(body: dict[str, Any]) -> tuple[str, str, str, list[dict[str, str]]]:
    problems = Problems()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        problems.add("name", f"is required, at most {MAX_NAME} characters")
    problems.raise_any()
    subject, preheader, blocks = templates.check_template(
        body.get("subject"), body.get("preheader", ""), body.get("blocks"), {"contact": SAMPLE}
    )
    return str(name).strip(), subject, preheader, blocks


async def create(ctx: PluginContext, body: dict[str, Any]) -> dict[str, Any]:
    """A new template; a 400 names each bad field (``blocks[2].url``…)."""
    name, subject, preheader, blocks = await _check(body)
    template_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO email_marketing_templates (tenant_id, id, name, subject, preheader, blocks) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        ctx.tenant_id,
        template_id,
        name,
        subject,
        preheader,
        json.dumps(blocks),
    )
    return await get(ctx, template_id)


async def update(ctx: PluginContext, template_id: UUID, body: dict[str, Any]) -> dict[str, Any]:
    """Change a template (campaigns already sending keep the version they compiled)."""
    current = await get(ctx, template_id)
    name, subject, preheader, blocks = await _check({**current, **body})
    await ctx.db.execute(
        "UPDATE email_marketing_templates SET name = $3, subject = $4, preheader = $5, "
        "blocks = $6::jsonb, updated_at = clock_timestamp() WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        template_id,
        name,
        subject,
        preheader,
        json.dumps(blocks),
    )
    return await get(ctx, template_id)


async def get(ctx: PluginContext, template_id: UUID) -> dict[str, Any]:
    """One template, or a 404."""
    row = await ctx.db.fetchrow(
        "SELECT id, name, subject, preheader, blocks, created_at, updated_at "
        "FROM email_marketing_templates WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        template_id,
    )
    if row is None:
        raise not_found("template", template_id)
    return _row(row)


async def templates_of(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's templates, by name."""
    rows = await ctx.db.fetch(
        "SELECT id, name, subject, preheader, blocks, created_at, updated_at "
        "FROM email_marketing_templates WHERE tenant_id = $1 ORDER BY lower(name), id",
        ctx.tenant_id,
    )
    return [_row(row) for row in rows]


async def _values(ctx: PluginContext, contact_id: Any, problems: Problems) -> dict[str, Any]:
    if contact_id in (None, ""):
        return SAMPLE
    ident = parse_uuid(contact_id, "contact_id", problems)
    problems.raise_any()
    assert ident is not None  # noqa: S101 - parse_uuid added a problem otherwise
    contact = await ctx.contacts.get(ident)
    if contact is None:
        raise invalid({"contact_id": f"contact {ident} not found in this workspace"})
    return templates.contact_values(contact)


async def preview(ctx: PluginContext, template_id: UUID, contact_id: Any) -> dict[str, Any]:
    """The template rendered for a real contact (or a sample one): subject, HTML, text, size."""
    template = await get(ctx, template_id)
    values = await _values(ctx, contact_id, Problems())
    made = templates.compiled(
        (ctx.tenant_id, template_id, template["updated_at"]),
        template["subject"],
        template["preheader"],
        template["blocks"],
    )
    rendered = templates.render(made, {"contact": values}, templates.PlainLinks(made.links))
    return {
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
        "size": len(rendered.html.encode()),
        "links": list(made.links),
    }


async def test_send(ctx: PluginContext, template_id: UUID, body: dict[str, Any]) -> dict[str, Any]:
    """Send the template once to ``email`` (personalised for ``contact_id`` when given)."""
    problems = Problems()
    to = _email(body.get("email"), "email", problems, required=True)
    sender = _email(
        body.get("from_email") or ctx.settings.get("from_email"),
        "from_email",
        problems,
        required=True,
    )
    problems.raise_any()
    assert to is not None  # noqa: S101 - required above
    assert sender is not None  # noqa: S101
    template = await get(ctx, template_id)
    values = await _values(ctx, body.get("contact_id"), problems)
    made = templates.compiled(
        (ctx.tenant_id, template_id, template["updated_at"]),
        template["subject"],
        template["preheader"],
        template["blocks"],
    )
    parts = sending.CampaignParts(
        template=made,
        sender=mime.address(str(ctx.settings.get("from_name") or ""), sender),
        sender_email=sender,
        reply_to=None,
        unsubscribe_mailto=str(ctx.settings.get("unsubscribe_mailto") or sender),
        feedback_id=f"test:{ctx.tenant_id.hex[:16]}:orbit",
    )
    message_id = uuid7()
    data = sending.build_message(
        ctx,
        parts,
        message_id,
        to,
        values,
        formatdate(usegmt=True),
        links=templates.PlainLinks(made.links),
        subject_prefix="[Test] ",
    )
    [result] = await transport.send(ctx, [transport.OutgoingMessage(message_id, sender, to, data)])
    return {"sent": result.ok, "code": result.code, "detail": result.detail}
