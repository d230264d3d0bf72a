"""Plugins the tests load beside the installed ones: well-behaved, raising, hanging, snooping,
and one with public pages.

Each is an object with a ``MANIFEST`` and ``@hookimpl`` methods, exactly what an
entry point would load; ``registry()`` loads them into the test app's registry.
They are off for every tenant until a test enables them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from litestar.exceptions import PermissionDeniedException

from orbit.plugins.api import (
    Event,
    Fragment,
    Manifest,
    Page,
    PluginContext,
    PublicGate,
    PublicPage,
    Request,
    ScheduledJob,
    ScopeError,
    Setting,
    TimelineEntry,
    Widget,
    escape,
    get,
    hookimpl,
    post,
)
from orbit.plugins.registry import PluginRegistry
from tests.plugin_fixtures.relay import Relay
from tests.plugin_fixtures.services import SERVICE_PLUGINS

CALLS: dict[str, list[tuple[str, Any]]] = defaultdict(list)
"""Tenant slug → (hook, detail) calls the plugins saw, for assertions."""


def _manifest(plugin_id: str, name: str, summary: str, **more: Any) -> Manifest:
    """A test plugin's manifest: by Orbit's tests, MIT, for Orbit 0.1 and later."""
    more.setdefault("version", "0.1.0")
    more.setdefault("requires_orbit", ">=0.1")
    return Manifest(
        id=plugin_id, name=name, summary=summary, author="Orbit tests", license="MIT", **more
    )


async def _tick(ctx: PluginContext) -> None:
    CALLS[ctx.tenant_slug].append(("tick", None))


class Probe:
    """Well-behaved: stores events in its own table, fills the contact sidebar and dashboard."""

    MANIFEST = Manifest(
        id="probe",
        name="Probe",
        version="1.0.0",
        summary="Records what Orbit tells it",
        author="Orbit tests",
        license="MIT",
        requires_orbit=">=0.1,<1",
        scopes=("contacts:read",),
        slots=("contact.sidebar", "dashboard"),
        events=("contact.created",),
        settings=(
            Setting(name="greeting", label="Greeting", default="Hello"),
            Setting(name="api_token", label="API token", type="secret"),
            Setting(name="threshold", label="Threshold", type="integer", minimum=1, maximum=100),
            Setting(name="fail_events", label="Fail events", type="boolean", default=False),
        ),
        tables=("probe_seen",),
        migrations="tests.plugin_fixtures.piccolo_app",
        readme="# Probe\n\nRecords **everything**. <script>alert(1)</script>",
    )

    @hookimpl
    def orbit_plugin_installed(self, ctx: PluginContext) -> None:
        CALLS[ctx.tenant_slug].append(("installed", None))

    @hookimpl
    def orbit_plugin_enabled(self, ctx: PluginContext) -> None:
        CALLS[ctx.tenant_slug].append(("enabled", None))

    @hookimpl
    def orbit_plugin_disabled(self, ctx: PluginContext, reason: str) -> None:
        CALLS[ctx.tenant_slug].append(("disabled", reason))

    @hookimpl
    def orbit_plugin_uninstalled(self, ctx: PluginContext, keep_data: bool) -> None:
        CALLS[ctx.tenant_slug].append(("uninstalled", keep_data))

    @hookimpl
    async def orbit_event(self, ctx: PluginContext, event: Event) -> None:
        CALLS[ctx.tenant_slug].append(("event", event.id))
        await ctx.db.execute(
            "INSERT INTO probe_seen (tenant_id, event_id, contact_id) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            ctx.tenant_id,
            event.id,
            UUID(event.data["id"]),
        )
        if ctx.settings.get("fail_events"):
            raise RuntimeError("probe was told to fail after writing")

    @hookimpl
    async def orbit_ui_slot(
        self, ctx: PluginContext, slot: str, subject_id: UUID | None
    ) -> Fragment | None:
        if subject_id is None:
            return None
        contact = await ctx.contacts.get(subject_id)
        if contact is None:
            return None
        seen = await ctx.db.fetchval(
            "SELECT count(*) FROM probe_seen WHERE tenant_id = $1 AND contact_id = $2",
            ctx.tenant_id,
            subject_id,
        )
        greeting = escape(ctx.settings.get("greeting", ""))
        return Fragment(
            "Probe",
            f'<p id="probe-panel">{greeting} {escape(contact.name)} · seen {seen}</p>',
        )

    @hookimpl
    async def orbit_contact_export(self, ctx: PluginContext, contact_id: UUID) -> dict[str, Any]:
        seen = await ctx.db.fetchval(
            "SELECT count(*) FROM probe_seen WHERE tenant_id = $1 AND contact_id = $2",
            ctx.tenant_id,
            contact_id,
        )
        return {"times_seen": seen}

    @hookimpl
    async def orbit_contact_erase(self, ctx: PluginContext, contact_id: UUID) -> None:
        if ctx.settings.get("fail_events"):
            raise RuntimeError("probe was told to fail")
        await ctx.db.execute(
            "DELETE FROM probe_seen WHERE tenant_id = $1 AND contact_id = $2",
            ctx.tenant_id,
            contact_id,
        )

    @hookimpl
    def orbit_scheduled_jobs(self) -> list[ScheduledJob]:
        return [ScheduledJob("tick", timedelta(hours=1), _tick)]

    @hookimpl
    def orbit_dashboard_widgets(self, ctx: PluginContext) -> list[Widget]:
        return [Widget("Probe widget", '<p id="probe-widget">probing</p>')]

    @hookimpl
    def orbit_timeline_entries(
        self, ctx: PluginContext, subject_type: str, subject_id: UUID
    ) -> list[TimelineEntry]:
        from datetime import UTC, datetime  # noqa: PLC0415

        return [
            TimelineEntry(datetime.now(UTC), f"Probed this {subject_type}", "<b>raw</b>"),
            TimelineEntry(datetime.now(UTC), "Probe page", url="/t/x/apps/probe/page"),
            TimelineEntry(datetime.now(UTC), "Probe script", url="javascript:alert(1)"),
        ]

    @hookimpl
    def orbit_validate_settings(self, ctx: PluginContext, settings: dict[str, Any]) -> list[str]:
        return ["Greeting: that word is not allowed"] if settings.get("greeting") == "nope" else []

    @hookimpl
    def orbit_api_routes(self) -> list[Any]:
        @get("/seen")
        async def seen(plugin: PluginContext) -> dict[str, Any]:
            count = await plugin.db.fetchval("SELECT count(*) FROM probe_seen")
            return {"tenant": plugin.tenant_slug, "seen": count}

        return [seen]


class Raiser:
    """Raises in every hook it implements."""

    MANIFEST = _manifest(
        "raiser", "Raiser", "Always fails", slots=("contact.sidebar",), events=("contact.created",)
    )

    @hookimpl
    def orbit_ui_slot(self, ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment:
        raise RuntimeError("raiser always raises")

    @hookimpl
    def orbit_event(self, ctx: PluginContext, event: Event) -> None:
        raise RuntimeError("raiser always raises")


class Hanger:
    """Never answers."""

    MANIFEST = _manifest("hanger", "Hanger", "Never answers", slots=("contact.sidebar",))

    @hookimpl
    async def orbit_ui_slot(self, ctx: PluginContext, slot: str, subject_id: UUID | None) -> None:
        await asyncio.sleep(3600)


DOZING = asyncio.Event()
"""Set while Dozer's job or event runs; they end when :data:`WAKE` is set (or after 8 s)."""
WAKE = asyncio.Event()


async def _doze(ctx: PluginContext) -> None:
    DOZING.set()
    try:
        await asyncio.wait_for(WAKE.wait(), timeout=8)
    except TimeoutError:
        pass
    finally:
        DOZING.clear()


class Dozer:
    """A scheduled job and an event handler that take their time (nothing may wait on them)."""

    MANIFEST = _manifest(
        "dozer", "Dozer", "A slow scheduled job and a slow event", events=("contact.created",)
    )

    @hookimpl
    def orbit_scheduled_jobs(self) -> list[ScheduledJob]:
        return [ScheduledJob("doze", timedelta(hours=1), _doze)]

    @hookimpl
    async def orbit_event(self, ctx: PluginContext, event: Event) -> None:
        await _doze(ctx)


class Snoop:
    """Granted nothing; tries the core's data through its context and through raw SQL."""

    MANIFEST = _manifest(
        "snoop", "Snoop", "Tries to read what it was not granted", events=("contact.created",)
    )

    @hookimpl
    async def orbit_event(self, ctx: PluginContext, event: Event) -> None:
        try:
            await ctx.contacts.get(UUID(event.data["id"]))
        except ScopeError as exc:
            CALLS[ctx.tenant_slug].append(("scope_refused", str(exc)))
        try:
            await ctx.db.fetch("SELECT * FROM contacts")
        except Exception as exc:
            CALLS[ctx.tenant_slug].append(("sql_refused", str(exc)))
            raise


class Incompatible:
    """Needs a future Orbit."""

    MANIFEST = _manifest("future", "Future", "Needs Orbit 9", version="9.0.0", requires_orbit=">=9")


class Paid:
    """Costs money: paid plans only."""

    MANIFEST = _manifest(
        "paid", "Paid", "A paid plugin", version="1.0.0", price_per_seat=Decimal("4.50")
    )


class Herald:
    """Public pages: a greeting, a contact card and a one-click unsubscribe behind tokens."""

    MANIFEST = _manifest(
        "herald",
        "Herald",
        "Public pages behind signed links",
        scopes=("contacts:read",),
        tables=("herald_unsubscribed",),
        migrations="tests.plugin_fixtures.piccolo_app",
        nav=("Herald", "/"),
    )

    @hookimpl
    def orbit_page_routes(self) -> list[Any]:
        @get("/")
        async def home(plugin: PluginContext) -> Page:
            count = await plugin.db.fetchval(
                "SELECT count(*) FROM herald_unsubscribed WHERE tenant_id = $1", plugin.tenant_id
            )
            return Page(
                "Herald",
                f'<p id="herald-home">Unsubscribed: {count}</p>'
                f'<form method="post" action="{escape(plugin.url("/notes"))}">'
                f'{plugin.csrf_field()}<input name="note"><button>Go</button></form>',
            )

        @post("/notes", status_code=200)
        async def note(plugin: PluginContext, request: Request[Any, Any, Any]) -> Page:
            form = await request.form()
            return Page("Noted", f'<p id="herald-note">{escape(form.get("note", ""))}</p>')

        @get("/links/{contact_id:uuid}")
        async def links(plugin: PluginContext, contact_id: UUID, email: str) -> dict[str, str]:
            view = plugin.sign({"contact": contact_id}, "view", max_age=timedelta(days=1))
            leave = plugin.sign({"email": email}, "unsubscribe")
            return {
                "view": plugin.url(f"/c/{view}", public=True),
                "unsubscribe": plugin.url(f"/unsubscribe/{leave}", public=True),
                "page": plugin.url("/"),
            }

        @get("/verify")
        async def verify(plugin: PluginContext, token: str) -> dict[str, Any]:
            return plugin.verify(token, "view")

        return [home, links, verify, note]

    @hookimpl
    def orbit_public_routes(self) -> list[Any]:
        @get("/hello")
        async def hello() -> PublicPage:
            return PublicPage("Hello", '<p id="herald-hello">Hello, whoever you are</p>')

        @get("/c/{token:str}")
        async def contact_card(public: PublicGate, token: str) -> PublicPage:
            async with public.open(token, "view") as (ctx, data):
                contact = await ctx.contacts.get(UUID(data["contact"]))
            if contact is None:
                return PublicPage("Not here", "<p>No such contact</p>", status_code=404)
            return PublicPage(
                "Contact", f'<p id="herald-contact">{escape(contact.name)} · {ctx.tenant_slug}</p>'
            )

        @post("/unsubscribe/{token:str}", status_code=200)
        async def unsubscribe(
            public: PublicGate, token: str, request: Request[Any, Any, Any]
        ) -> PublicPage:
            form = await request.form()
            if form.get("List-Unsubscribe") != "One-Click":
                return PublicPage(
                    "Unsubscribe", "<p>Send List-Unsubscribe=One-Click</p>", status_code=400
                )
            async with public.open(token, "unsubscribe") as (ctx, data):
                await ctx.db.execute(
                    "INSERT INTO herald_unsubscribed (tenant_id, email) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING",
                    ctx.tenant_id,
                    data["email"],
                )
            return PublicPage("Unsubscribed", '<p id="herald-bye">You are unsubscribed</p>')

        @post("/broken/{token:str}", status_code=200)
        async def broken(public: PublicGate, token: str) -> PublicPage:
            async with public.open(token, "unsubscribe") as (ctx, data):
                await ctx.db.execute(
                    "INSERT INTO herald_unsubscribed (tenant_id, email) VALUES ($1, $2)",
                    ctx.tenant_id,
                    data["email"],
                )
                raise RuntimeError("herald breaks after writing")
            return PublicPage("Never", "")  # pragma: no cover

        @post("/refuse/{token:str}", status_code=200)
        async def refuse(public: PublicGate, token: str) -> PublicPage:
            async with public.open(token, "unsubscribe"):
                raise PermissionDeniedException("herald refuses this caller")
            return PublicPage("Never", "")  # pragma: no cover

        return [hello, contact_card, unsubscribe, broken, refuse]


TEST_PLUGINS = (
    Probe, Raiser, Hanger, Dozer, Snoop, Incompatible, Paid, Herald, *SERVICE_PLUGINS, Relay
)  # fmt: skip
APPS = ("tests.plugin_fixtures.piccolo_app",)


def registry() -> PluginRegistry:
    """The installed plugins (entry points) plus the test plugins above."""
    found = PluginRegistry.discover()
    for plugin in TEST_PLUGINS:
        found.load(f"tests ({plugin.__name__})", plugin)
    return found
