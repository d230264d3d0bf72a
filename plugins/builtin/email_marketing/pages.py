"""The plugin's pages under ``/t/{slug}/apps/email_marketing/``, inside Orbit's layout.

Campaigns (the home page), each campaign with live counters (htmx polls a fragment
every two seconds while it is scheduled or sending), lists, segments and templates.
Forms post plainly with the session's CSRF field and land back on a page; bad input
re-renders the form with what is wrong (400).
"""

from __future__ import annotations

from gettext import gettext as _
from typing import Any
from uuid import UUID

from litestar.exceptions import HTTPException, ValidationException

from orbit.plugins.api import (
    Page,
    PluginContext,
    Request,
    Response,
    Widget,
    escape,
    get,
    post,
)
from orbit.plugins.builtin.email_marketing import audiences, campaigns, library

LIVE = ("scheduled", "sending")
ACTIONS = {"schedule": campaigns.schedule, "pause": campaigns.pause,
           "resume": campaigns.resume, "cancel": campaigns.cancel}  # fmt: skip


def _e(value: object) -> str:
    return str(escape("" if value is None else value))


def _menu(ctx: PluginContext, here: str) -> str:
    items = [("/", _("Campaigns")), ("/lists", _("Lists")), ("/segments", _("Segments")),
             ("/templates", _("Templates")), ("/sequences", _("Sequences")),
             ("/deliverability", _("Deliverability"))]  # fmt: skip
    links = " · ".join(
        f"<strong>{_e(label)}</strong>"
        if path == here
        else f'<a href="{_e(ctx.url(path))}">{_e(label)}</a>'
        for path, label in items
    )
    return f'<nav class="em-menu">{links}</nav>'


def _a(ctx: PluginContext, path: str, text: object) -> str:
    return f'<a href="{_e(ctx.url(path))}">{_e(text)}</a>'


def _errors(exc: Exception | None) -> str:
    if exc is None:
        return ""
    extra = getattr(exc, "extra", None)
    if isinstance(extra, list) and extra:
        items = "".join(f"<li>{_e(i.get('key'))}: {_e(i.get('message'))}</li>" for i in extra)
    else:
        items = f"<li>{_e(getattr(exc, 'detail', str(exc)))}</li>"
    return f'<ul class="errors" role="alert">{items}</ul>'


def _redirect(ctx: PluginContext, path: str) -> Response[Any]:
    return Response(b"", status_code=303, headers={"Location": ctx.url(path)})


async def _form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    return {key: form.get(key) for key in form}


def _field(label: str, name: str, value: object = "", kind: str = "text", **attrs: str) -> str:
    more = "".join(f' {k}="{_e(v)}"' for k, v in attrs.items())
    return (
        f'<label>{_e(label)} <input type="{kind}" name="{name}" value="{_e(value)}"{more}></label>'
    )


# --- campaigns ------------------------------------------------------------------------


_LABELS = {"schedule": _("Send now"), "pause": _("Pause"), "resume": _("Resume"),
           "cancel": _("Cancel")}  # fmt: skip
_ALLOWED = {
    "draft": ("schedule", "cancel"),
    "scheduled": ("pause", "cancel"),
    "sending": ("pause", "cancel"),
    "paused": ("resume", "cancel"),
}


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def counters(ctx: PluginContext, campaign: dict[str, Any]) -> str:
    """What can be done now and the live counters; polls itself while the campaign is live."""
    report = campaigns.report(campaign)
    base = f"/campaigns/{campaign['id']}"
    poll = (
        f' hx-get="{_e(ctx.url(base + "/counters"))}" hx-trigger="every 2s" hx-swap="outerHTML"'
        if campaign["status"] in LIVE
        else ""
    )
    buttons = "".join(
        f'<form method="post" action="{_e(ctx.url(base + "/" + action))}" '
        f'style="display:inline-block;margin-right:.5em">{ctx.csrf_field()}'
        f'<button type="submit">{_e(_LABELS[action])}</button></form>'
        for action in _ALLOWED.get(campaign["status"], ())
    )
    cells = [
        ("status", _("Status"), report["status"]),
        ("recipients", _("Recipients"), report["recipients"]),
        ("queued", _("Queued"), report["queued"]),
        ("sent", _("Sent"), report["sent"]),
        ("suppressed", _("Suppressed"), report["suppressed"]),
        ("deferred", _("Deferred"), report["deferred"]),
        ("bounced", _("Bounced"), report["bounced"]),
        ("complained", _("Complaints"), report["complained"]),
        ("opened_human", _("Opened (people)"), report["opened_human"]),
        ("opened_machine", _("Opened (machines)"), report["opened_machine"]),
        ("clicked_human", _("Clicked (people)"), report["clicked_human"]),
        ("clicked_machine", _("Clicked (machines)"), report["clicked_machine"]),
        ("unsubscribed", _("Unsubscribed"), report["unsubscribed"]),
        ("started_at", _("Started"), _when(report["started_at"])),
        ("finished_at", _("Finished"), _when(report["finished_at"])),
    ]
    rows = "".join(
        f'<tr><th scope="row">{_e(label)}</th><td data-counter="{key}">{_e(value)}</td></tr>'
        for key, label, value in cells
    )
    reason = (
        f'<p class="notice" id="paused-reason">{_e(report["paused_reason"])}</p>'
        if report["paused_reason"]
        else ""
    )
    if report["last_error"] and campaign["status"] in LIVE:
        problem = _("Last delivery problem (retried later): {error}").format(
            error=report["last_error"]
        )
        reason += f'<p class="notice" id="last-error">{_e(problem)}</p>'

    return (
        f'<div id="counters"{poll}><div class="actions">{buttons}</div>{reason}'
        f'<table class="counters">{rows}</table></div>'
    )


async def _audience_options(ctx: PluginContext) -> str:
    options = [
        f'<option value="list:{row["id"]}">{_e(_("List"))}: {_e(row["name"])} '
        f"({row['member_count']})</option>"
        for row in await audiences.lists(ctx)
    ] + [
        f'<option value="segment:{row["id"]}">{_e(_("Segment"))}: {_e(row["name"])} '
        f"({row['member_count']})</option>"
        for row in await audiences.segments(ctx)
    ]
    return "".join(options)


async def _home(ctx: PluginContext, error: Exception | None = None) -> Page:
    rows = "".join(
        f"<tr><td>{_a(ctx, '/campaigns/' + str(c['id']), c['name'])}</td>"
        f"<td>{_e(c['status'])}</td><td>{c['sent']} / {c['recipients']}</td>"
        f"<td>{c['opened_human']} / {c['opened_machine']}</td>"
        f"<td>{c['clicked_human']} / {c['clicked_machine']}</td><td>{c['unsubscribed']}</td></tr>"
        for c in await campaigns.all_campaigns(ctx)
    )
    templates = "".join(
        f'<option value="{t["id"]}">{_e(t["name"])}</option>'
        for t in await library.templates_of(ctx)
    )
    table = (
        f"<table><thead><tr><th>{_e(_('Campaign'))}</th><th>{_e(_('Status'))}</th>"
        f"<th>{_e(_('Sent'))}</th><th>{_e(_('Opened: people / machines'))}</th>"
        f"<th>{_e(_('Clicked: people / machines'))}</th><th>{_e(_('Unsubscribed'))}</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else f"<p>{_e(_('No campaigns yet.'))}</p>"
    )
    form = (
        f"<h2>{_e(_('New campaign'))}</h2>{_errors(error)}"
        f'<form method="post" action="{_e(ctx.url("/campaigns"))}" id="new-campaign">'
        f"{ctx.csrf_field()}{_field(_('Name'), 'name')}"
        f'<label>{_e(_("Template"))} <select name="template_id">{templates}</select></label>'
        f'<label>{_e(_("Audience"))} <select name="audience">{await _audience_options(ctx)}'
        f"</select></label>"
        f"{_field(_('From address'), 'from_email', ctx.settings.get('from_email') or '')}"
        f"{_field(_('From name'), 'from_name', ctx.settings.get('from_name') or '')}"
        f'<button type="submit">{_e(_("Create campaign"))}</button></form>'
    )
    return Page(
        _("Campaigns"),
        f"{_menu(ctx, '/')}{table}{form}",
        status_code=400 if error else 200,
    )


@get("/")
async def home(plugin: PluginContext) -> Page:
    """Campaigns with their counters, and a form for a new one."""
    return await _home(plugin)


@post("/campaigns", status_code=303)
async def create_campaign(plugin: PluginContext, request: Request[Any, Any, Any]) -> Response[Any]:
    """Create a draft campaign from the home page's form."""
    form = await _form(request)
    kind, _sep, audience_id = str(form.pop("audience", "") or "").partition(":")
    try:
        made = await campaigns.create(
            plugin, {**form, "audience_kind": kind, "audience_id": audience_id}
        )
    except ValidationException as exc:
        return await _home(plugin, exc)
    return _redirect(plugin, f"/campaigns/{made['id']}")


@get("/campaigns/{campaign_id:uuid}")
async def campaign_page(plugin: PluginContext, campaign_id: UUID) -> Page:
    """One campaign: live counters and what can be done with it now."""
    campaign = await campaigns.get(plugin, campaign_id)
    return Page(
        campaign["name"],
        f"{_menu(plugin, '')}"
        f"<p>{_e(campaign['from_name'])} &lt;{_e(campaign['from_email'])}&gt;</p>"
        f"{counters(plugin, campaign)}",
    )


@get("/campaigns/{campaign_id:uuid}/counters")
async def campaign_counters(plugin: PluginContext, campaign_id: UUID) -> Response[str]:
    """The counters fragment htmx polls."""
    campaign = await campaigns.get(plugin, campaign_id)
    return Response(counters(plugin, campaign), media_type="text/html")


@post("/campaigns/{campaign_id:uuid}/{action:str}", status_code=303)
async def campaign_action(plugin: PluginContext, campaign_id: UUID, action: str) -> Response[Any]:
    """Send now, pause, resume or cancel."""
    run = ACTIONS.get(action)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no action {action!r}")
    if action == "schedule":
        await campaigns.schedule(plugin, campaign_id, {})
    else:
        await run(plugin, campaign_id)  # type: ignore[operator]
    return _redirect(plugin, f"/campaigns/{campaign_id}")


# --- lists ----------------------------------------------------------------------------


async def _lists_page(ctx: PluginContext, error: Exception | None = None) -> Page:
    items = "".join(
        f"<li>{_a(ctx, '/lists/' + str(row['id']), row['name'])} "
        f'(<span data-members="{row["id"]}">{row["member_count"]}</span>)</li>'
        for row in await audiences.lists(ctx)
    )
    return Page(
        _("Lists"),
        f"{_menu(ctx, '/lists')}<ul>{items}</ul>"
        f"<h2>{_e(_('New list'))}</h2>{_errors(error)}"
        f'<form method="post" action="{_e(ctx.url("/lists"))}" id="new-list">{ctx.csrf_field()}'
        f'{_field(_("Name"), "name")}<button type="submit">{_e(_("Create list"))}</button></form>',
        status_code=400 if error else 200,
    )


@get("/lists")
async def lists_page(plugin: PluginContext) -> Page:
    """The workspace's lists and a form for a new one."""
    return await _lists_page(plugin)


@post("/lists", status_code=303)
async def create_list(plugin: PluginContext, request: Request[Any, Any, Any]) -> Response[Any]:
    """Create a list from the form."""
    form = await _form(request)
    try:
        made = await audiences.create_list(plugin, form.get("name"), "")
    except ValidationException as exc:
        return await _lists_page(plugin, exc)
    return _redirect(plugin, f"/lists/{made['id']}")


async def _list_page(ctx: PluginContext, list_id: UUID, note: str = "", status: int = 200) -> Page:
    found = await audiences.get_list(ctx, list_id)
    return Page(
        found["name"],
        f"{_menu(ctx, '')}"
        f'<p>{_e(_("Members"))}: <span id="member-count">{found["member_count"]}</span></p>'
        f'{note}<form method="post" action="{_e(ctx.url(f"/lists/{list_id}/members"))}" '
        f'id="add-members">{ctx.csrf_field()}<label>{_e(_("Add contacts by email, one a line"))}'
        f'<textarea name="emails" rows="5"></textarea></label>'
        f'<button type="submit">{_e(_("Add"))}</button></form>',
        status_code=status,
    )


@get("/lists/{list_id:uuid}")
async def list_page(plugin: PluginContext, list_id: UUID) -> Page:
    """One list, and a form to add contacts by their addresses."""
    return await _list_page(plugin, list_id)


@post("/lists/{list_id:uuid}/members", status_code=303)
async def add_members(
    plugin: PluginContext, list_id: UUID, request: Request[Any, Any, Any]
) -> Response[Any]:
    """Add the contacts with these addresses; the unknown ones are named."""
    form = await _form(request)
    emails = [line.strip() for line in str(form.get("emails") or "").splitlines() if line.strip()]
    found: list[str] = []
    unknown: list[str] = []
    for address in emails[: audiences.MAX_ADD]:
        contact = await plugin.contacts.by_email(address)
        (found if contact else unknown).append(str(contact.id) if contact else address)
    if found:
        await audiences.add_members(plugin, list_id, found)
    if unknown:
        note = _("No contact has these addresses: {emails}").format(emails=", ".join(unknown))
        return await _list_page(plugin, list_id, f'<p class="errors">{_e(note)}</p>', 400)
    return _redirect(plugin, f"/lists/{list_id}")


# --- segments -------------------------------------------------------------------------


async def _segments_page(ctx: PluginContext, error: Exception | None = None) -> Page:
    items = "".join(
        f'<li>{_e(row["name"])}: <span data-segment="{row["id"]}">{row["member_count"]}</span> '
        f"{_e(_('contacts'))}</li>"
        for row in await audiences.segments(ctx)
    )
    events = "".join(
        f'<option value="{key}">{_e(label)}</option>'
        for key, label in (("", _("any")), ("opened", _("opened an email")),
                           ("clicked", _("clicked a link")), ("not_opened", _("opened nothing")))
    )  # fmt: skip
    return Page(
        _("Segments"),
        f"{_menu(ctx, '/segments')}<ul>{items}</ul>"
        f"<h2>{_e(_('New segment'))}</h2>{_errors(error)}"
        f'<form method="post" action="{_e(ctx.url("/segments"))}" id="new-segment">'
        f"{ctx.csrf_field()}{_field(_('Name'), 'name')}{_field(_('Tagged'), 'tag')}"
        f'<label>{_e(_("Email behaviour (people only)"))} <select name="event">{events}'
        f"</select></label>{_field(_('Within days'), 'days', '', 'number', min='1')}"
        f'<button type="submit">{_e(_("Save segment"))}</button></form>',
        status_code=400 if error else 200,
    )


@get("/segments")
async def segments_page(plugin: PluginContext) -> Page:
    """The workspace's segments with their counts, and a form for a new one."""
    return await _segments_page(plugin)


@post("/segments", status_code=303)
async def create_segment(plugin: PluginContext, request: Request[Any, Any, Any]) -> Response[Any]:
    """Save a segment: contacts with a tag and/or an email behaviour."""
    form = await _form(request)
    tag = str(form.get("tag") or "").strip()
    event = str(form.get("event") or "")
    days = str(form.get("days") or "").strip()
    behaviour = (
        [{"event": event, **({"days": int(days)} if days.isdigit() else {})}] if event else []
    )
    body = {
        "name": form.get("name"),
        "filters": [{"field": "tags", "op": "contains", "value": tag}] if tag else [],
        "behaviour": behaviour,
    }
    try:
        await audiences.create_segment(plugin, body)
    except ValidationException as exc:
        return await _segments_page(plugin, exc)
    return _redirect(plugin, "/segments")


# --- templates ------------------------------------------------------------------------


async def _templates_page(ctx: PluginContext, error: Exception | None = None) -> Page:
    items = "".join(
        f"<li>{_a(ctx, '/templates/' + str(row['id']), row['name'])}: {_e(row['subject'])}</li>"
        for row in await library.templates_of(ctx)
    )
    return Page(
        _("Templates"),
        f"{_menu(ctx, '/templates')}<ul>{items}</ul>"
        f"<h2>{_e(_('New template'))}</h2>{_errors(error)}"
        f'<form method="post" action="{_e(ctx.url("/templates"))}" id="new-template">'
        f"{ctx.csrf_field()}{_field(_('Name'), 'name')}"
        f"{_field(_('Subject'), 'subject', 'Hello {{ contact.first_name }}')}"
        f"{_field(_('Heading'), 'heading')}"
        f'<label>{_e(_("Text"))} <textarea name="text" rows="6"></textarea></label>'
        f"{_field(_('Button label'), 'button_text')}{_field(_('Button link'), 'button_url')}"
        f'<button type="submit">{_e(_("Save template"))}</button></form>',
        status_code=400 if error else 200,
    )


@get("/templates")
async def templates_page(plugin: PluginContext) -> Page:
    """The workspace's templates and a simple block editor for a new one."""
    return await _templates_page(plugin)


@post("/templates", status_code=303)
async def create_template(plugin: PluginContext, request: Request[Any, Any, Any]) -> Response[Any]:
    """Save a template from the editor's blocks."""
    form = await _form(request)
    blocks: list[dict[str, str]] = []
    if str(form.get("heading") or "").strip():
        blocks.append({"type": "heading", "text": str(form["heading"])})
    if str(form.get("text") or "").strip():
        blocks.append({"type": "text", "text": str(form["text"])})
    if str(form.get("button_text") or "").strip() or str(form.get("button_url") or "").strip():
        blocks.append({"type": "button", "text": str(form.get("button_text") or ""),
                       "url": str(form.get("button_url") or "")})  # fmt: skip
    try:
        made = await library.create(
            plugin, {"name": form.get("name"), "subject": form.get("subject"), "blocks": blocks}
        )
    except ValidationException as exc:
        return await _templates_page(plugin, exc)
    return _redirect(plugin, f"/templates/{made['id']}")


async def _template_page(
    ctx: PluginContext, template_id: UUID, email: str = "", note: str = "", status: int = 200
) -> Page:
    found = await library.get(ctx, template_id)
    contact = await ctx.contacts.by_email(email) if email else None
    preview = await library.preview(ctx, template_id, str(contact.id) if contact else None)
    who = contact.name if contact else _("a sample contact (Ada Lovelace)")
    test_url = ctx.url(f"/templates/{template_id}/test")
    return Page(
        found["name"],
        f"{_menu(ctx, '')}"
        '<form method="get" id="preview-for">'
        f"{_field(_('Preview for the contact'), 'email', email)}"
        f'<button type="submit">{_e(_("Preview"))}</button></form>'
        f"<p>{_e(_('Preview for'))} {_e(who)} · {_e(_('Subject'))}: "
        f'<strong id="preview-subject">{_e(preview["subject"])}</strong> · '
        f"{preview['size'] // 1024} KB</p>"
        f'<iframe title="{_e(_("Preview"))}" sandbox srcdoc="{_e(preview["html"])}" '
        'style="width:100%;height:480px;border:1px solid #ddd"></iframe>'
        f"<h2>{_e(_('Text part'))}</h2><pre>{_e(preview['text'])}</pre>"
        f"<h2>{_e(_('Send a test'))}</h2>{note}"
        f'<form method="post" action="{_e(test_url)}" id="test-send">{ctx.csrf_field()}'
        f"{_field(_('To'), 'to', ctx.settings.get('from_email') or '')}"
        f'<input type="hidden" name="email" value="{_e(email)}">'
        f'<button type="submit">{_e(_("Send test"))}</button></form>',
        status_code=status,
    )


@get("/templates/{template_id:uuid}")
async def template_page(plugin: PluginContext, template_id: UUID, email: str = "") -> Page:
    """A template's preview, personalised for the contact with ``email`` (or a sample)."""
    return await _template_page(plugin, template_id, email)


@post("/templates/{template_id:uuid}/test", status_code=200)
async def template_test(
    plugin: PluginContext, template_id: UUID, request: Request[Any, Any, Any]
) -> Page:
    """Send the template once to an address, personalised as previewed."""
    form = await _form(request)
    email = str(form.get("email") or "")
    contact = await plugin.contacts.by_email(email) if email else None
    try:
        result = await library.test_send(
            plugin,
            template_id,
            {"email": form.get("to"), "contact_id": str(contact.id) if contact else None},
        )
    except ValidationException as exc:
        return await _template_page(plugin, template_id, email, _errors(exc), 400)
    if result["sent"]:
        note = _("Sent to {address}.").format(address=form.get("to"))
        return await _template_page(
            plugin, template_id, email, f'<p id="test-result">{_e(note)}</p>'
        )
    failed = _("Not sent: {code} {detail}").format(code=result["code"], detail=result["detail"])
    return await _template_page(
        plugin, template_id, email, f'<p class="errors" id="test-result">{_e(failed)}</p>', 502
    )


async def dashboard(ctx: PluginContext) -> Widget | None:
    """A dashboard card: the five latest campaigns, opens and clicks of people and machines."""
    latest = (await campaigns.all_campaigns(ctx))[:5]
    if not latest:
        return None
    rows = "".join(
        f"<tr><td>{_a(ctx, '/campaigns/' + str(c['id']), c['name'])}</td><td>{_e(c['status'])}</td>"
        f"<td>{c['sent']}</td><td>{c['opened_human']} · {c['opened_machine']}</td>"
        f"<td>{c['clicked_human']} · {c['clicked_machine']}</td></tr>"
        for c in latest
    )
    return Widget(
        _("Email campaigns"),
        f'<table id="em-dashboard"><thead><tr><th>{_e(_("Campaign"))}</th>'
        f"<th>{_e(_('Status'))}</th><th>{_e(_('Sent'))}</th>"
        f"<th>{_e(_('Opened: people · machines'))}</th>"
        f"<th>{_e(_('Clicked: people · machines'))}</th></tr></thead><tbody>{rows}</tbody></table>",
    )


def routes() -> list[Any]:
    """Every page route handler."""
    return [
        home, create_campaign, campaign_page, campaign_counters, campaign_action,
        lists_page, create_list, list_page, add_members,
        segments_page, create_segment, templates_page, create_template, template_page,
        template_test,
    ]  # fmt: skip
