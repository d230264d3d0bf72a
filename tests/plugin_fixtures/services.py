"""Plugins using the context's data services, through API routes the tests call.

``servant`` asks for every scope the services need, emits ``servant.pinged`` and
declares the ``servant_quote`` hook; ``bare`` serves the same routes with no scope
at all; ``listener`` subscribes to ``servant.pinged`` and answers the hook;
``grumpy`` raises in it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime
from typing import Any
from uuid import UUID

from orbit.plugins.api import Event, Manifest, PluginContext, get, hookimpl, patch, post

HEARD: dict[str, list[tuple[str, Any]]] = defaultdict(list)
"""Tenant slug → (plugin, what it heard), for assertions."""

SERVICE_SCOPES = (
    "contacts:read",
    "contacts:write",
    "companies:read",
    "deals:read",
    "deals:write",
    "tasks:read",
    "tasks:write",
    "users:read",
    "mail:send",
)


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def service_routes() -> list[Any]:  # noqa: C901 - one small route per service
    """Routes calling each service of the plugin's context (new handlers each call)."""

    @post("/contacts/query", status_code=200)
    async def query(plugin: PluginContext, data: dict[str, Any]) -> list[dict[str, Any]]:
        after = UUID(data["after"]) if data.get("after") else None
        found = await plugin.contacts.query(
            data.get("filters"), q=data.get("q"), after=after, limit=data.get("limit", 500)
        )
        return [_plain(c) for c in found]

    @post("/contacts/count", status_code=200)
    async def count(plugin: PluginContext, data: dict[str, Any]) -> dict[str, int]:
        return {"count": await plugin.contacts.count(data.get("filters"), q=data.get("q"))}

    @get("/contacts/by-email")
    async def by_email(plugin: PluginContext, email: str) -> dict[str, Any] | None:
        return _plain(await plugin.contacts.by_email(email))

    @get("/contacts/{contact_id:uuid}")
    async def contact(plugin: PluginContext, contact_id: UUID) -> dict[str, Any] | None:
        return _plain(await plugin.contacts.get(contact_id))

    @patch("/contacts/{contact_id:uuid}")
    async def update(
        plugin: PluginContext, contact_id: UUID, data: dict[str, Any]
    ) -> dict[str, Any]:
        return _plain(await plugin.contacts.update(contact_id, **data))

    @post("/contacts/{contact_id:uuid}/tags", status_code=200)
    async def add_tags(
        plugin: PluginContext, contact_id: UUID, data: dict[str, Any]
    ) -> dict[str, Any]:
        return _plain(await plugin.contacts.add_tags(contact_id, data["tags"]))

    @get("/companies/{company_id:uuid}")
    async def company(plugin: PluginContext, company_id: UUID) -> dict[str, Any] | None:
        return _plain(await plugin.companies.get(company_id))

    @get("/deals/{deal_id:uuid}")
    async def deal(plugin: PluginContext, deal_id: UUID) -> dict[str, Any] | None:
        found = await plugin.deals.get(deal_id)
        return None if found is None else _plain(found) | {"contact_id": found.contact_id}

    @post("/deals/{deal_id:uuid}/won", status_code=200)
    async def won(plugin: PluginContext, deal_id: UUID) -> dict[str, Any]:
        return _plain(await plugin.deals.mark_won(deal_id))

    @post("/deals/{deal_id:uuid}/move", status_code=200)
    async def move(plugin: PluginContext, deal_id: UUID, data: dict[str, Any]) -> dict[str, Any]:
        moved = await plugin.deals.move(
            deal_id, UUID(data["stage_id"]), lost_reason=data.get("lost_reason")
        )
        return _plain(moved)

    @post("/tasks", status_code=201)
    async def task(plugin: PluginContext, data: dict[str, Any]) -> dict[str, str]:
        ids = {k: UUID(data[k]) for k in ("assignee_id", "contact_id", "deal_id") if data.get(k)}
        due = datetime.fromisoformat(data["due_at"]) if data.get("due_at") else None
        task_id = await plugin.tasks.create(
            data["title"], due_at=due, notes=data.get("notes", ""), **ids
        )
        return {"id": str(task_id)}

    @get("/tasks/{task_id:uuid}")
    async def read_task(plugin: PluginContext, task_id: UUID) -> dict[str, Any] | None:
        return _plain(await plugin.tasks.get(task_id))

    @get("/users")
    async def users(plugin: PluginContext) -> list[dict[str, Any]]:
        return [_plain(u) for u in await plugin.users.list()]

    @post("/mail", status_code=201)
    async def mail(plugin: PluginContext, data: dict[str, Any]) -> dict[str, str]:
        email_id = await plugin.mail.send(
            data["to"],
            data["subject"],
            data["text"],
            html=data.get("html"),
            headers=data.get("headers"),
            reply_to=data.get("reply_to"),
        )
        if data.get("then_fail"):
            raise RuntimeError("the request fails after queueing")
        return {"id": str(email_id)}

    @post("/emit", status_code=201)
    async def emit(plugin: PluginContext, data: dict[str, Any]) -> dict[str, str]:
        return {"id": str(await plugin.events.emit(data["type"], data["data"]))}

    @post("/hooks/{name:str}", status_code=200)
    async def call_hook(plugin: PluginContext, name: str, data: dict[str, Any]) -> Any:
        if data.pop("_with_db", False):  # the plugin's own SQL first, then the hook, then SQL
            before = await plugin.db.fetchval("SELECT current_user")
            answers = await plugin.hooks.call(name, **data)
            after = await plugin.db.fetchval("SELECT current_user")
            return {"roles": [before, after], "answers": [[a.plugin_id, a.value] for a in answers]}
        if data.pop("_first", False):
            return {"first": await plugin.hooks.first(name, **data)}
        return [[a.plugin_id, a.value] for a in await plugin.hooks.call(name, **data)]

    return [
        query,
        count,
        by_email,
        contact,
        update,
        add_tags,
        company,
        deal,
        won,
        move,
        task,
        read_task,
        users,
        mail,
        emit,
        call_hook,
    ]


def _manifest(plugin_id: str, summary: str, **more: Any) -> Manifest:
    return Manifest(
        id=plugin_id,
        name=plugin_id.title(),
        version="0.1.0",
        summary=summary,
        author="Orbit tests",
        license="MIT",
        requires_orbit=">=0.1",
        **more,
    )


class Servant:
    """Uses every data service; emits servant.pinged; declares servant_quote."""

    MANIFEST = _manifest(
        "servant",
        "Calls the context's data services",
        scopes=SERVICE_SCOPES,
        emits=("servant.pinged",),
        hookspecs="tests.plugin_fixtures.servant_hookspecs",
    )

    @hookimpl
    def orbit_api_routes(self) -> list[Any]:
        return service_routes()

    @hookimpl
    async def servant_quote(self, ctx: PluginContext, amount: int) -> str | None:
        """Its own hook, answering only for 9: its SQL inside the caller's (the same plugin)."""
        if amount != 9:  # the nested-call test's amount
            return None
        return f"servant as {await ctx.db.fetchval('SELECT current_user')}"


class Bare:
    """The same routes, granted nothing."""

    MANIFEST = _manifest("bare", "Calls the services without scopes", emits=("bare.pinged",))

    @hookimpl
    def orbit_api_routes(self) -> list[Any]:
        return service_routes()


class Listener:
    """Hears servant.pinged and quotes."""

    MANIFEST = _manifest(
        "listener", "Listens to the servant", events=("servant.pinged", "contact.created")
    )

    @hookimpl
    def orbit_event(self, ctx: PluginContext, event: Event) -> None:
        HEARD[ctx.tenant_slug].append(("listener", (event.type, event.data)))

    @hookimpl
    def servant_quote(self, ctx: PluginContext, amount: int) -> str:
        return f"listener quotes {amount} in {ctx.tenant_slug}"


class Grumpy:
    """Raises when asked for a quote."""

    MANIFEST = _manifest("grumpy", "Fails the servant's hook")

    @hookimpl
    def servant_quote(self, ctx: PluginContext, amount: int) -> str:
        raise RuntimeError(f"grumpy will not quote {amount}")


SERVICE_PLUGINS = (Grumpy, Servant, Bare, Listener)
"""Grumpy first: its implementation waits for the servant's hookspecs."""
